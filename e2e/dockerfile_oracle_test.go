package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/testenv"
)

// oracleCase is a Dockerfile (after "ARG BASE", FROM $BASE giving the
// loopback registry's Debian), its context and its build args.
type oracleCase struct {
	name, dockerfile string
	// files are the context's: "symlink:T" makes a symlink to T.
	files  map[string]string
	args   []string // KEY=VALUE
	target string
}

// oracleTime is the context files' mtime: before the build, so that a
// file keeping it came from the context.
var oracleTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

// TestDockerfileOracle builds each case with Docker 20.10's BuildKit
// (Debian's docker.io, on a daemon of the test's own) and with devbox,
// and compares the two images: every file (type, mode, owner, content,
// link, time where it is not the build's) and the config.
func TestDockerfileOracle(t *testing.T) {
	testenv.NeedRoot(t)
	dk := testenv.StartDocker(t)
	base := debianRegistry(t)
	root := t.TempDir()
	linkBase(t, root)
	for _, c := range oracleCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := oracleProject(t, c)
			since := time.Now().Add(-time.Second)
			args := []string{"build", "--network=none", "--build-arg", "BASE=" + base, "-t", "oracle-" + c.name}
			for _, a := range c.args {
				args = append(args, "--build-arg", a)
			}
			if c.target != "" {
				args = append(args, "--target", c.target)
			}
			start := time.Now()
			if _, err := dk.Run(append(args, filepath.Join(dir, "ctx"))...); err != nil {
				t.Fatal(err)
			}
			dockerTook := time.Since(start)
			want := filepath.Join(dir, "docker.tar")
			if _, err := dk.Run("save", "-o", want, "oracle-"+c.name); err != nil {
				t.Fatal(err)
			}
			got := filepath.Join(dir, "devbox.tar")
			start = time.Now()
			if r := devbox(t, dir, "--root", root, "build", "--output", "type=docker,dest="+got); r.code != 0 {
				t.Fatalf("devbox build: %d\n%s%s", r.code, r.stdout, tail(r.stderr))
			}
			t.Logf("docker build %s, devbox build %s", dockerTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			// To look at a difference by hand: DEVBOX_ORACLE_KEEP=DIR.
			if keep := os.Getenv("DEVBOX_ORACLE_KEEP"); keep != "" {
				os.MkdirAll(filepath.Join(keep, c.name), 0o755)
				execCommand("cp", want, got, filepath.Join(keep, c.name)).Run()
			}
			for _, d := range diffImages(loadImage(t, want), loadImage(t, got), since) {
				t.Error(d)
			}
		})
	}
}

// oracleProject writes the case's context and a devbox.toml that builds
// it as Docker does (no network for its steps, as --network=none).
func oracleProject(t *testing.T, c oracleCase) string {
	extra := "[network]\nmode = \"none\""
	if c.target != "" {
		extra += fmt.Sprintf("\n[dockerfile]\ntarget = %q", c.target)
	}
	var args []string
	for _, a := range c.args {
		k, v, _ := strings.Cut(a, "=")
		args = append(args, fmt.Sprintf("%s = %q", k, v))
	}
	dir := dockerfileProject(t, "ARG BASE\n"+c.dockerfile, extra, args...)
	ctx := filepath.Join(dir, "ctx")
	for name, content := range c.files {
		p := filepath.Join(ctx, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "symlink:"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.Walk(ctx, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.Mode()&os.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, oracleTime, oracleTime)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
