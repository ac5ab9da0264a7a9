package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/testenv"
)

// fileServer serves files by path on loopback, with a Last-Modified;
// set changes one while it runs.
type fileServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
}

var servedAt = time.Date(2021, 2, 3, 4, 5, 6, 0, time.UTC)

func newFileServer(t *testing.T, files map[string][]byte) *fileServer {
	fs := &fileServer{files: files}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.mu.Lock()
		b, ok := fs.files[r.URL.Path]
		fs.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", servedAt.Format(http.TimeFormat))
		w.Write(b)
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fileServer) set(path string, b []byte) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.files[path] = b
}

func sha256Of(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestDockerfileCopyFlags: what BuildKit builds of ADD URL (with and
// without --checksum), --exclude and --parents, devbox builds the same:
// each line of the run's output says where BuildKit does it.
func TestDockerfileCopyFlags(t *testing.T) {
	testenv.NeedRoot(t)
	root := baseRoot(t)
	arch := smallTgz(t)
	srv := newFileServer(t, map[string][]byte{"/dl/tool.tgz": arch, "/dl/script.sh": []byte("#!/bin/sh\necho tool\n"), "/dl/changing.txt": []byte("v1\n")})
	body := strings.ReplaceAll(`ARG BASE
FROM scratch AS files
COPY tree /t/
FROM ${BASE}
ARG SUM
ADD --checksum=${SUM} URL/dl/tool.tgz /opt/dl/
ADD --chown=1500:1500 --chmod=755 URL/dl/script.sh /usr/local/bin/tool
ADD URL/dl/changing.txt /changing.txt
COPY --exclude=*.tmp --exclude=sub tree /ex/
ADD --exclude=**/*.tmp tree /addex/
COPY --parents --chown=1500 src/a/./b/*.txt src/c/d.txt /par/
COPY --link a.txt /link.txt
COPY --from=files --parents --exclude=**/*.tmp /t/./deep /fromstage/
`, "URL", srv.URL)
	dir := dockerfileProject(t, body, "[network]\nmode = \"none\"", fmt.Sprintf("SUM = %q", sha256Of(arch)))
	ctx := filepath.Join(dir, "ctx")
	for _, f := range []string{"a.txt", "tree/keep.txt", "tree/drop.tmp", "tree/sub/x.txt", "tree/deep/y.tmp", "tree/deep/z.txt",
		"src/a/b/one.txt", "src/a/b/two.md", "src/c/d.txt", "src/c/e.txt"} {
		os.MkdirAll(filepath.Join(ctx, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(ctx, f), []byte(f+"\n"), 0o644)
	}
	run := func() result {
		return devbox(t, dir, "--root", root, "run", "--", "sh", "-c",
			`stat -c '%n %u:%g %a %Y' /opt/dl/tool.tgz /usr/local/bin/tool /changing.txt /par/b/one.txt /par/src/c/d.txt; `+
				`tool; cat /changing.txt; cd /ex && find . | sort | tr '\n' ' '; echo; cd /addex && find . | sort | tr '\n' ' '; echo; `+
				`cd /par && find . | sort | tr '\n' ' '; echo; cat /link.txt; cd /fromstage && find . | sort | tr '\n' ' '`)
	}
	mtime := servedAt.Unix()
	want := strings.Join([]string{
		// A download is 0600, root's, Last-Modified its mtime
		// (source/http/source.go), and not unpacked (convert_copy.go).
		fmt.Sprintf("/opt/dl/tool.tgz 0:0 600 %d", mtime),
		// --chown and --chmod apply to it (the copy's llb.WithUser, Mode).
		fmt.Sprintf("/usr/local/bin/tool 1500:1500 755 %d", mtime),
		fmt.Sprintf("/changing.txt 0:0 600 %d", mtime),
		// --parents: from the /./ pivot, or the whole path; the copy's
		// owner (convert_copy.go IncludePatterns, fsutil copy).
		"/par/b/one.txt 1500:1500 644 ",
		"/par/src/c/d.txt 1500:1500 644 ",
		"tool",
		"v1",
		// --exclude, relative to the source (fsutil copy ExcludePatterns).
		". ./deep ./deep/y.tmp ./deep/z.txt ./keep.txt ",
		". ./deep ./deep/z.txt ./keep.txt ./sub ./sub/x.txt ",
		". ./b ./b/one.txt ./src ./src/c ./src/c/d.txt ",
		"a.txt",
		// The same from a stage.
		". ./deep ./deep/z.txt ",
	}, "\n")
	check := func(r result, want string) {
		t.Helper()
		// The copies' mtimes are the context's: not compared.
		got := mustCompile(`(?m)^(/par/\S+ \S+ \d+ )\d+$`).ReplaceAllString(r.stdout, "$1")
		if r.code != 0 || got != want {
			t.Errorf("run: %d\n%s\nwant\n%s\n%s", r.code, got, want, tail(r.stderr))
		}
	}
	check(run(), want)
	// Without --checksum the URL is fetched again for each build, and a
	// changed file re-runs its step (BuildKit's key is the content).
	srv.set("/dl/changing.txt", []byte("v2\n"))
	want = strings.Replace(want, "\nv1\n", "\nv2\n", 1)
	check(run(), want)
	// Unchanged, it is the same step.
	r := run()
	check(r, want)
	if !mustCompile(`ADD http://\S+/dl/changing.txt /changing.txt … cached`).MatchString(r.stderr) {
		t.Errorf("an unchanged download re-ran its step:\n%s", tail(r.stderr))
	}
}

// TestDockerfileCopyFlagsBadChecksum: a download that does not match its
// --checksum fails the build, naming the line, the URL and both digests.
func TestDockerfileCopyFlagsBadChecksum(t *testing.T) {
	testenv.NeedRoot(t)
	root := baseRoot(t)
	srv := newFileServer(t, map[string][]byte{"/f.txt": []byte("real\n")})
	wrong := sha256Of([]byte("other\n"))
	dir := dockerfileProject(t, "ARG BASE\nFROM ${BASE}\nADD --checksum="+wrong+" "+srv.URL+"/f.txt /f.txt\n", "[network]\nmode = \"none\"")
	r := devbox(t, dir, "--root", root, "run", "--", "true")
	out := r.stdout + r.stderr
	for _, s := range []string{"Dockerfile:3", srv.URL + "/f.txt", "checksum mismatch", "expected " + wrong, "got " + sha256Of([]byte("real\n"))} {
		if r.code == 0 || !strings.Contains(out, s) {
			t.Errorf("run: %d, no %q in\n%s", r.code, s, tail(out))
		}
	}
}

// smallTgz is a small .tgz, which ADD from a URL must not unpack.
func smallTgz(t *testing.T) []byte {
	t.Helper()
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, "in.txt"), []byte("in\n"), 0o644)
	out := filepath.Join(t.TempDir(), "a.tgz")
	if b, err := execCommand("tar", "-C", d, "-czf", out, "in.txt").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, b)
	}
	b, _ := os.ReadFile(out)
	return b
}
