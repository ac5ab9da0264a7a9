package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/dockerfilecases"
	"github.com/devbox/devbox/internal/testenv"
)

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
	root := baseRoot(t)
	// What either build makes has a later time than this (a cached step
	// of Docker's may come from an earlier case).
	since := time.Now().Add(-time.Second)
	// ADD of a URL: both tools fetch on the host (BuildKit in dockerd).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := map[string][]byte{"/file.txt": []byte("served\n"), "/data.tgz": tarGz(t, true, "in/x=x")}[r.URL.Path]
		http.ServeContent(w, r, r.URL.Path, oracleTime, bytes.NewReader(body))
	}))
	t.Cleanup(srv.Close)
	for _, c := range dockerfilecases.Cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			if strings.Contains(c.Dockerfile, "$URL") {
				c.Args = append(slices.Clone(c.Args), "URL="+srv.URL)
			}
			dir := oracleProject(t, c)
			args := []string{"build", "--network=none", "--build-arg", "BASE=" + base, "-t", "oracle-" + c.Name}
			for _, a := range c.Args {
				args = append(args, "--build-arg", a)
			}
			if c.Target != "" {
				args = append(args, "--target", c.Target)
			}
			var devboxArgs []string
			if c.Secret != "" {
				src := filepath.Join(dir, "secret")
				os.WriteFile(src, []byte(c.Secret), 0o600)
				args = append(args, "--secret", "id=tok,src="+src)
				devboxArgs = append(devboxArgs, "--secret", "id=tok,src="+src)
			}
			// The two builds run side by side: Docker's is mostly waiting.
			want, got := filepath.Join(dir, "docker.tar"), filepath.Join(dir, "devbox.tar")
			var dockerTook time.Duration
			dockerErr := make(chan error, 1)
			go func() {
				start := time.Now()
				_, err := dk.Run(append(args, filepath.Join(dir, "ctx"))...)
				dockerTook = time.Since(start)
				if err == nil {
					_, err = dk.Run("save", "-o", want, "oracle-"+c.Name)
				}
				dockerErr <- err
			}()
			start := time.Now()
			r := devbox(t, dir, append([]string{"--root", root, "build", "--output", "type=docker,dest=" + got}, devboxArgs...)...)
			devboxTook := time.Since(start)
			if err := <-dockerErr; err != nil {
				t.Fatal(err)
			}
			if r.code != 0 {
				t.Fatalf("devbox build: %d\n%s%s", r.code, r.stdout, tail(r.stderr))
			}
			t.Logf("docker build %s, devbox build and output %s", dockerTook.Round(time.Millisecond), devboxTook.Round(time.Millisecond))
			// To look at a difference by hand: DEVBOX_ORACLE_KEEP=DIR.
			if keep := os.Getenv("DEVBOX_ORACLE_KEEP"); keep != "" {
				os.MkdirAll(filepath.Join(keep, c.Name), 0o755)
				execCommand("cp", want, got, filepath.Join(keep, c.Name)).Run()
			}
			for _, d := range diffImages(loadImage(t, want), loadImage(t, got), since) {
				if !slices.ContainsFunc(c.Stubs, func(p string) bool { return strings.HasPrefix(d, p+": only in Docker's (type 5 ") }) {
					t.Error(d)
				}
			}
		})
	}
}

// oracleProject writes the case's context and a devbox.toml that builds
// it as Docker does (no network for its steps, as --network=none).
func oracleProject(t *testing.T, c dockerfilecases.Case) string {
	extra := "[network]\nmode = \"none\""
	if c.Target != "" {
		extra += fmt.Sprintf("\n[dockerfile]\ntarget = %q", c.Target)
	}
	var args []string
	for _, a := range c.Args {
		k, v, _ := strings.Cut(a, "=")
		args = append(args, fmt.Sprintf("%s = %q", k, v))
	}
	// ARG BASE goes after the parser directives.
	body := "ARG BASE\n" + c.Dockerfile
	if first, rest, ok := strings.Cut(c.Dockerfile, "\n"); ok && strings.HasPrefix(first, "# ") {
		body = first + "\nARG BASE\n" + rest
	}
	dir := dockerfileProject(t, body, extra, args...)
	ctx := filepath.Join(dir, "ctx")
	for name, content := range c.Files {
		writeContextFile(t, ctx, name, content)
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

// writeContextFile writes ctx/name: content, or as its prefix says a symlink
// ("symlink:TARGET"), an executable ("exec:"), an archive of name=content
// lines ("tgz:", "tar:"); a name ending in / is an empty directory.
func writeContextFile(t *testing.T, ctx, name, content string) {
	t.Helper()
	p := filepath.Join(ctx, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	mode, data := os.FileMode(0o644), []byte(content)
	switch {
	case strings.HasSuffix(name, "/"):
		err := os.MkdirAll(p, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		return
	case strings.HasPrefix(content, "symlink:"):
		if err := os.Symlink(strings.TrimPrefix(content, "symlink:"), p); err != nil {
			t.Fatal(err)
		}
		return
	case strings.HasPrefix(content, "exec:"):
		mode, data = 0o755, []byte(strings.TrimPrefix(content, "exec:"))
	case strings.HasPrefix(content, "tgz:"):
		data = tarGz(t, true, strings.Split(strings.TrimPrefix(content, "tgz:"), "\n")...)
	case strings.HasPrefix(content, "tar:"):
		data = tarGz(t, false, strings.Split(strings.TrimPrefix(content, "tar:"), "\n")...)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

// tarGz is a tar (gzipped if gz) of name=content entries, owned by
// 1000:1000, with its directories, at oracleTime.
func tarGz(t *testing.T, gz bool, entries ...string) []byte {
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	for _, e := range entries {
		name, content, _ := strings.Cut(e, "=")
		if d := path.Dir(name); d != "." && !dirs[d] {
			dirs[d] = true
			tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 1000, ModTime: oracleTime})
		}
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1000, Gid: 1000, Size: int64(len(content)), ModTime: oracleTime})
		tw.Write([]byte(content))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}
