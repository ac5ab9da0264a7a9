package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox/devbox/internal/testenv"
)

// dockerfileProject writes ctx/Dockerfile (body) and a devbox.toml that
// builds it with BASE the loopback registry's Debian and extra spec
// lines (before [dockerfile.args]; args are lines in it); it returns the
// project dir.
func dockerfileProject(t *testing.T, body, extra string, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	ctx := filepath.Join(dir, "ctx")
	os.MkdirAll(ctx, 0o755)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(body), 0o644)
	spec := fmt.Sprintf("base = \"dockerfile:ctx/Dockerfile\"\n%s\n[dockerfile.args]\nBASE = %q\n%s\n", extra, debianRegistry(t), strings.Join(args, "\n"))
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644)
	return dir
}

// TestDockerfileStageBases: a final stage FROM scratch that copies from
// an earlier stage, and a final stage FROM an earlier stage, build (they
// panicked in the user-namespace probe, which looked at the target
// stage's image layers: none for scratch or a stage).
func TestDockerfileStageBases(t *testing.T) {
	testenv.NeedRoot(t)
	for _, c := range []struct{ name, body, cmd, want string }{
		{"scratch", "ARG BASE\nFROM ${BASE} AS build\nRUN echo built > /msg\nFROM scratch\nCOPY --from=build / /\nCOPY --from=build /msg /copied\n",
			"cat /copied", "built\n"},
		{"stage", "ARG BASE\nFROM ${BASE} AS base\nRUN echo one > /one\nFROM base AS two\nRUN echo two > /two\n",
			"cat /one /two", "one\ntwo\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := baseRoot(t)
			dir := dockerfileProject(t, c.body, "")
			r := devbox(t, dir, "--root", root, "run", "--", "sh", "-c", c.cmd)
			if r.code != 0 || r.stdout != c.want || strings.Contains(r.stderr, "panic") {
				t.Errorf("run: %d %q, want %q\n%s", r.code, r.stdout, c.want, tail(r.stderr))
			}
		})
	}
}

// TestRelativeRoot: --root rel/dir is taken from the working directory,
// for a build and a run (the state root was used relative, and broke
// once devbox changed directory or handed paths to the container).
func TestRelativeRoot(t *testing.T) {
	testenv.NeedRoot(t)
	dir := dockerfileProject(t, "ARG BASE\nFROM ${BASE}\nRUN echo built > /built\n", "")
	linkBase(t, filepath.Join(dir, "rel", "dir"))
	r := devbox(t, dir, "--root", "rel/dir", "run", "--", "cat", "/built")
	if r.code != 0 || r.stdout != "built\n" {
		t.Errorf("run: %d %q\n%s", r.code, r.stdout, tail(r.stderr))
	}
}
