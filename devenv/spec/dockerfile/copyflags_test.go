package dockerfile

import (
	"slices"
	"strings"
	"testing"

	"github.com/devbox/devbox/rootfs"
)

func evalSteps(t *testing.T, body string) ([]Step, error) {
	t.Helper()
	f, err := Parse(write(t, body), nil, "")
	if err != nil {
		return nil, err
	}
	ev, err := f.Target().Evaluate(rootfs.Config{WorkingDir: "/w"}, nil)
	if err != nil {
		return nil, err
	}
	return ev.Steps, nil
}

// TestCopyFlags: the flags are carried to the step as BuildKit reads
// them; --link is accepted.
func TestCopyFlags(t *testing.T) {
	sum := "sha256:" + strings.Repeat("ab", 32)
	steps, err := evalSteps(t, `FROM a
ARG V=1
COPY --link --parents --exclude=*.tmp --exclude=b/** a/./b* /d/
ADD --chmod=640 --checksum=`+sum+` https://example.com/v${V}/tool.tar.gz?x=1 /opt/
ADD --unpack=false --exclude=x local.tgz http://example.com/ /e
`)
	if err != nil {
		t.Fatal(err)
	}
	c := steps[0]
	if !c.Parents || !slices.Equal(c.Exclude, []string{"*.tmp", "b/**"}) || !slices.Equal(c.Sources, []string{"a/./b*"}) || c.Dest != "/d/" {
		t.Errorf("COPY: %+v", c)
	}
	a := steps[1]
	if a.Checksum != sum || len(a.Sources) != 0 || a.Chmod != "640" ||
		!slices.Equal(a.Remote, []RemoteFile{{URL: "https://example.com/v1/tool.tar.gz?x=1", Name: "tool.tar.gz"}}) {
		t.Errorf("ADD URL: %+v", a)
	}
	b := steps[2]
	if b.Unpack == nil || *b.Unpack || !slices.Equal(b.Sources, []string{"local.tgz"}) ||
		!slices.Equal(b.Remote, []RemoteFile{{URL: "http://example.com/", Name: "__unnamed__"}}) {
		t.Errorf("ADD mixed: %+v", b)
	}
}

// TestCopyFlagsRefused: every invalid use is an error with the line.
func TestCopyFlagsRefused(t *testing.T) {
	sum := "sha256:" + strings.Repeat("ab", 32)
	for _, c := range []struct{ line, want string }{
		{"ADD git@github.com:o/r.git /x", "ADD from git is not supported"},
		{"ADD https://github.com/o/r.git#main /x", "ADD from git is not supported"},
		{"ADD --keep-git-dir ssh://h/r /x", "ADD from git is not supported"},
		{"ADD ftp://h/f /x", "only http:// and https://"},
		{"ADD --checksum=" + sum + " https://h/a https://h/b /x/", "multiple sources"},
		{"ADD --checksum=" + sum + " a.txt /x", "requires an HTTP(S) source"},
		{"ADD --checksum=abc https://h/a /x", "ALGORITHM:HEX"},
		{"ADD --checksum=md5:abc https://h/a /x", "unsupported algorithm"},
		{"ADD --checksum=sha256:ABC https://h/a /x", "64 lowercase hex"},
		{"COPY --exclude=[ a /x", "--exclude"},
		{"COPY https://h/a /x", "source can't be a URL for COPY"},
		{"COPY git@github.com:o/r.git /x", "source can't be a git ref for COPY"},
		// BuildKit's ADD has no --parents: its parser says so.
		{"ADD --parents a /x", "unknown flag: --parents"},
	} {
		_, err := evalSteps(t, "FROM a\n"+c.line+"\n")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), ":2:") && !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%s: %v, want %q", c.line, err, c.want)
		}
	}
}

func TestRemoteName(t *testing.T) {
	for url, want := range map[string]string{
		"https://h/a/b.tgz":      "b.tgz",
		"https://h/a/b%20c.txt":  "b c.txt",
		"https://h":              "__unnamed__",
		"https://h/dir/":         "dir",
		"https://h/x?name=y.txt": "x",
		"https://h/..":           "download",
	} {
		if got := remoteName(url); got != want {
			t.Errorf("%s: %q, want %q", url, got, want)
		}
	}
}
