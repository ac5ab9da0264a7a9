package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox/devbox/devenv/spec/dockerfile"
	"github.com/devbox/devbox/rootfs"
)

// runKey is the key and canonical input of the last step of body's plan,
// with ctx's files (name → content) in the build context.
func runKey(t *testing.T, body, extra string, ctx map[string]string) (string, string, error) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(body), 0o644)
	for name, data := range ctx {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644)
	}
	s := mustParse(t, dir, "base = \"dockerfile:Dockerfile\"\n"+extra)
	p, err := NewPlan(s, func(rootfs.Ref) (*rootfs.Image, error) { return &rootfs.Image{Digest: "sha256:1"}, nil }, nil)
	if err != nil {
		return "", "", err
	}
	for i := len(p.Steps) - 1; i >= 0; i-- {
		if st := p.Steps[i]; st.Kind == StepDocker {
			return st.Key, st.Canonical, nil
		}
	}
	t.Fatal("no Dockerfile step")
	return "", "", nil
}

// TestRunKeyWithoutFlags: a RUN without --mount or --network is keyed as
// before devbox knew them, so that its cached layers stay valid.
func TestRunKeyWithoutFlags(t *testing.T) {
	_, c, err := runKey(t, "FROM a\nRUN true\n", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "kind=RUN\nargs=/bin/sh\x00-c\x00true\nenv=\nworkdir=/\nuser=\nsources=\ndest=\nchown=\nchmod="
	if c != want {
		t.Errorf("canonical %q, want %q", c, want)
	}
}

// TestRunMountKeys: a mount's options are in the key, as is what a bind
// reads from the context; what a cache holds or a secret is never is
// (the plan does not see them), only their ids.
func TestRunMountKeys(t *testing.T) {
	key := func(body string, ctx map[string]string) string {
		t.Helper()
		k, _, err := runKey(t, "FROM a AS s\nRUN echo s\nFROM a\n"+body+"\n", "", ctx)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ctx := map[string]string{"a.txt": "a", "other.txt": "o"}
	base := key("RUN --mount=type=cache,target=/c true", ctx)
	for _, c := range []struct {
		name, body string
		ctx        map[string]string
		same       bool
	}{
		{"same", "RUN --mount=type=cache,target=/c true", ctx, true},
		{"the cache's id", "RUN --mount=type=cache,target=/c,id=x true", ctx, false},
		{"its sharing", "RUN --mount=type=cache,target=/c,sharing=locked true", ctx, false},
		{"its owner", "RUN --mount=type=cache,target=/c,uid=1 true", ctx, false},
		{"a tmpfs instead", "RUN --mount=type=tmpfs,target=/c true", ctx, false},
		{"no network", "RUN --network=none --mount=type=cache,target=/c true", ctx, false},
	} {
		if got := key(c.body, c.ctx); (got == base) != c.same {
			t.Errorf("%s: same key %t, want %t", c.name, got == base, c.same)
		}
	}
	bind := key("RUN --mount=source=a.txt,target=/a true", ctx)
	if key("RUN --mount=source=a.txt,target=/a true", map[string]string{"a.txt": "a", "other.txt": "changed"}) != bind {
		t.Error("a file the bind does not mount changed its key")
	}
	if key("RUN --mount=source=a.txt,target=/a true", map[string]string{"a.txt": "changed", "other.txt": "o"}) == bind {
		t.Error("the bind's file changed and its key did not")
	}
	if key("RUN --mount=type=secret,id=a true", ctx) == key("RUN --mount=type=secret,id=b true", ctx) {
		t.Error("two secrets' ids, one key")
	}
	_, c, _ := runKey(t, "FROM a AS s\nRUN echo s\nFROM a\nRUN --mount=from=s,target=/s true\n", "", nil)
	if !strings.Contains(c, "\nmount-stage=") {
		t.Errorf("a bind from a stage is not keyed by the stage: %q", c)
	}
}

// TestRunNetworkHost: --network=host is refused, with the line and how
// to allow it, unless the spec's network is the host's.
func TestRunNetworkHost(t *testing.T) {
	_, _, err := runKey(t, "FROM a\n\nRUN --network=host true\n", "", nil)
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:3: RUN: --network=host is refused") || !strings.Contains(err.Error(), `mode = "host"`) {
		t.Errorf("refused: %v", err)
	}
	if _, c, err := runKey(t, "FROM a\nRUN --network=host true\n", "[network]\nmode = \"host\"\n", nil); err != nil || !strings.Contains(c, "network=host") {
		t.Errorf("opted in: %v %q", err, c)
	}
}

// TestMountStubs: the mount points the layers lacked are taken out of
// the writable layer when the run left them empty, not otherwise.
func TestMountStubs(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(lower, "var/cache"), 0o755)
	mounts := []dockerfile.Mount{{Target: "/var/cache/apt/archives"}, {Target: "/run/secrets/tok"}, {Target: "/kept"}, {Type: "secret"}}
	stubs := mountStubs([]string{lower}, upper, mounts)
	if got := strings.Join(stubs, " "); got != "var/cache/apt/archives var/cache/apt run/secrets/tok run/secrets run kept" {
		t.Fatalf("stubs %q", got)
	}
	// What the runtime made, and what the RUN wrote beside one.
	os.MkdirAll(filepath.Join(upper, "var/cache/apt/archives"), 0o755)
	os.MkdirAll(filepath.Join(upper, "run/secrets"), 0o755)
	os.WriteFile(filepath.Join(upper, "run/secrets/tok"), nil, 0o644)
	os.MkdirAll(filepath.Join(upper, "kept"), 0o755)
	os.WriteFile(filepath.Join(upper, "kept/file"), []byte("x"), 0o644)
	if err := removeStubs(upper, stubs); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"var/cache/apt": false, "run": false, "kept/file": true, "var/cache": true} {
		if _, err := os.Lstat(filepath.Join(upper, p)); (err == nil) != want {
			t.Errorf("%s: present %t, want %t", p, err == nil, want)
		}
	}
}
