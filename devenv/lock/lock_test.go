package lock

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sample() *File {
	return &File{
		Version: Version, Build: "top",
		Base:     Base{Ref: "debian:bookworm", Digest: "sha256:aa"},
		Node:     &Node{Version: "20.18.0", URL: "https://nodejs.org/dist/v20.18.0/x.tar.xz", Digest: "sha256:bb"},
		Packages: &Packages{Manager: "apt", Installed: []string{"zlib1g=1:1.2.13", "gcc=4:12.2.0-3"}},
		Steps:    []Step{{Kind: "packages", Summary: "packages (apt) gcc", Key: "k1", DiffID: "sha256:cc"}},
	}
}

// TestRoundTrip: a lock reads back as written, in a stable order.
func TestRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	f := sample()
	if err := f.Write(p); err != nil {
		t.Fatal(err)
	}
	g, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(f, g) || len(Diff(f, g)) != 0 {
		t.Errorf("read back differs: %v", Diff(f, g))
	}
	if v, ok := g.Installed("gcc"); !ok || v != "4:12.2.0-3" {
		t.Errorf("gcc pinned at %q %v", v, ok)
	}
	data, _ := os.ReadFile(p)
	if strings.Index(string(data), "gcc=") > strings.Index(string(data), "zlib1g=") {
		t.Errorf("packages not sorted:\n%s", data)
	}
}

func TestDiff(t *testing.T) {
	a, b := sample(), sample()
	b.Node.Version, b.Node.Digest = "20.19.0", "sha256:dd"
	got := strings.Join(Diff(a, b), "\n")
	if got != "- node 20.18.0 sha256:bb\n+ node 20.19.0 sha256:dd" {
		t.Errorf("diff:\n%s", got)
	}
}

// TestDiffEscapedAndLayers: a lock's strings (a cloned repository's file)
// print escaped, and a step whose layer changed under the same key shows.
func TestDiffEscapedAndLayers(t *testing.T) {
	a, b := sample(), sample()
	b.Packages.Installed = append(b.Packages.Installed, "evil=1\x1b]0;pwned\x07")
	b.Steps[0].DiffID = "sha256:ee"
	got := strings.Join(Diff(a, b), "\n")
	want := "- step 1 layer sha256:cc\n+ package evil=1\\x1b]0;pwned\\x07\n+ step 1 layer sha256:ee"
	if got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
}

func TestReadRefuses(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"unknown key": "version = 1\nbuild = \"x\"\nsurprise = 1\n",
		"version":     "version = 9\n",
		"syntax":      "version = \n",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		if _, err := Read(p); err == nil {
			t.Errorf("%s: read without error", name)
		}
	}
	if f, err := Read(filepath.Join(dir, "missing")); f != nil || err != nil {
		t.Errorf("missing lock: %v %v", f, err)
	}
}

// TestPackageEntries: a lock's package entries reach a package manager's
// command line, so only NAME=VERSION in the managers' characters is read.
func TestPackageEntries(t *testing.T) {
	for _, ok := range []string{"libc6=2.36-9+deb12u4", "g++=4:12.2.0-3", "tzdata=2024a-0+deb12u1", "musl=1.2.4_git20230717-r4", "kernel-headers=5.14.0-1.el9_2", "libstdc++6=12.2.0-14~bpo", "perl=5.36.0^git", ".python-rundeps=20240101.120000", "libc6:amd64=2.36-9"} {
		if !ValidPackage(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"gcc", "=1.0", "gcc=", "gcc=1;rm -rf /", "gcc=1 x", "-o=1", "gcc=$(id)", "a\nb=1", "gcc=1\nPackage: x"} {
		if ValidPackage(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	p := filepath.Join(t.TempDir(), FileName)
	f := sample()
	f.Packages.Installed = append(f.Packages.Installed, "evil=1;touch /x")
	os.WriteFile(p, f.Bytes(), 0o644)
	if _, err := Read(p); err == nil || !strings.Contains(err.Error(), `"evil=1;touch /x" is not NAME=VERSION`) {
		t.Errorf("a lock with a shell command for a version: %v", err)
	}
}
