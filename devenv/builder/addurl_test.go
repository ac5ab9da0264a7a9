package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbox/devbox/devenv/spec/dockerfile"
)

// serve serves body at every path, with Last-Modified when mod is set.
func serve(t *testing.T, body *string, mod time.Time) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		if !mod.IsZero() {
			w.Header().Set("Last-Modified", mod.UTC().Format(http.TimeFormat))
		}
		w.Write([]byte(*body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestAddURL: a download is keyed by its content (by --checksum when
// given), copied 0600 and root's with Last-Modified as its mtime, not
// unpacked; a wrong checksum names the URL and both digests.
func TestAddURL(t *testing.T) {
	body := "one"
	mod := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	srv := serve(t, &body, mod)
	url := srv.URL + "/dir/tool.sh"
	d := newDownloads(t.TempDir(), func(string) {})
	p := &Plan{remote: newRemoteFiles(context.Background(), d), Dockerfile: &dockerfile.File{Path: "Dockerfile"}}
	ds := &dockerfile.Step{Kind: dockerfile.Add, Line: 3, Remote: []dockerfile.RemoteFile{{URL: url, Name: "tool.sh"}}, Dest: "/opt/"}
	in, err := p.remoteInput(ds, ds.Remote[0])
	if err != nil || !strings.Contains(in, sha("one")) || !strings.Contains(in, "2020-01-02T03:04:05Z") {
		t.Fatalf("key %q %v", in, err)
	}
	// Another URL with the same file is the same step, as in BuildKit.
	mirror := dockerfile.RemoteFile{URL: srv.URL + "/mirror/tool.sh", Name: "tool.sh"}
	if in2, _ := (&Plan{remote: newRemoteFiles(context.Background(), d)}).remoteInput(ds, mirror); in2 != in {
		t.Errorf("a mirror's key %q, want %q", in2, in)
	}
	body = "two"
	p2 := &Plan{remote: newRemoteFiles(context.Background(), d)}
	if in2, _ := p2.remoteInput(ds, ds.Remote[0]); in2 == in {
		t.Error("a changed file kept its key")
	}
	// The step copies what the plan downloaded.
	ms, err := p.remoteMatches(context.Background(), ds)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := copyStep(ds, nil, &copySource{root: t.TempDir()}, root, ms); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "opt/tool.sh"))
	if err != nil || fi.Mode().Perm() != 0o600 || !fi.ModTime().Equal(mod) {
		t.Fatalf("%v %v", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "opt/tool.sh")); string(b) != "one" {
		t.Errorf("content %q", b)
	}
	// With --checksum: keyed by it, downloaded by the step, checked.
	ds.Checksum = sha("two")
	p3 := &Plan{remote: newRemoteFiles(context.Background(), d), Dockerfile: p.Dockerfile}
	if in, _ := p3.remoteInput(ds, ds.Remote[0]); !strings.Contains(in, "checksum="+sha("two")) {
		t.Errorf("checksum key %q", in)
	}
	if _, err := p3.remoteMatches(context.Background(), ds); err != nil {
		t.Errorf("good checksum: %v", err)
	}
	// p has downloaded the URL without a checksum; the step with one
	// still checks.
	ds.Checksum = sha("three")
	_, err = p.remoteMatches(context.Background(), ds)
	if err == nil || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "expected "+sha("three")) ||
		!strings.Contains(err.Error(), "got "+sha("two")) || !strings.Contains(err.Error(), "Dockerfile:3") {
		t.Errorf("bad checksum: %v", err)
	}
	ds.Checksum, ds.Remote[0].URL = "", srv.URL+"/missing"
	if _, err := p3.remoteInput(ds, ds.Remote[0]); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing: %v", err)
	}
}

// TestAddURLNoLastModified: without Last-Modified the file's mtime is
// the epoch, as BuildKit's.
func TestAddURLNoLastModified(t *testing.T) {
	body := "x"
	srv := serve(t, &body, time.Time{})
	f, err := newDownloads(t.TempDir(), func(string) {}).fetchURL(context.Background(), srv.URL+"/x", "")
	if err != nil || f.modTime.Unix() != 0 || f.digest != sha("x") {
		t.Errorf("%+v %v", f, err)
	}
}

// tgz is a gzipped tar of one file, in.txt.
func tgz(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	tw := tar.NewWriter(z)
	tw.WriteHeader(&tar.Header{Name: "in.txt", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("in\n"))
	tw.Close()
	z.Close()
	return buf.Bytes()
}

// TestAddUnpack: a download is unpacked only with --unpack=true, a local
// archive unless --unpack=false (BuildKit's cfg.unpack in dispatchCopy).
func TestAddUnpack(t *testing.T) {
	body := string(tgz(t))
	srv := serve(t, &body, time.Time{})
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "l.tgz"), []byte(body), 0o644)
	bc, _ := openContext(ctx)
	yes, no := true, false
	for _, c := range []struct {
		unpack *bool
		want   string
	}{
		{nil, "d/ d/in.txt d/r.tgz"},
		{&yes, "d/ d/in.txt"},
		{&no, "d/ d/l.tgz d/r.tgz"},
	} {
		p := &Plan{remote: newRemoteFiles(context.Background(), newDownloads(t.TempDir(), func(string) {})), Dockerfile: &dockerfile.File{}}
		ds := &dockerfile.Step{Kind: dockerfile.Add, Sources: []string{"l.tgz"}, Remote: []dockerfile.RemoteFile{{URL: srv.URL + "/r.tgz", Name: "r.tgz"}},
			Dest: "/d/", Unpack: c.unpack}
		ms, err := p.remoteMatches(context.Background(), ds)
		if err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		if err := copyStep(ds, nil, &copySource{root: ctx, context: bc}, root, ms); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(listTree(t, root), " "); got != c.want {
			t.Errorf("--unpack=%v: %s, want %s", c.unpack, got, c.want)
		}
	}
}
