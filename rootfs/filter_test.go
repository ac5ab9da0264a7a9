package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportFiltered: the filter rewrites a file (the entry's size
// follows), drops another (a whiteout hides the lower layer's file of
// that name, so the image has none), drops every name of a hard-linked
// file, and leaves the rest as Export writes it; the same tree exports to
// the same digest.
func TestExportFiltered(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	write := func(dir, rel, body string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(lower, "etc/key", "an older file")
	write(lower, "etc/plain", "kept")
	write(upper, "etc/key", "SECRET 1")
	write(upper, "etc/account", "root:HASH:1\n")
	write(upper, "a/first", "SECRET 2")
	if err := os.Link(filepath.Join(upper, "a/first"), filepath.Join(upper, "b-second")); err != nil {
		t.Fatal(err)
	}
	filter := func(rel string, data []byte) ([]byte, bool) {
		if bytes.Contains(data, []byte("SECRET")) {
			return nil, true
		}
		return bytes.ReplaceAll(data, []byte("HASH"), []byte("!")), false
	}
	img, err := ExportFiltered(context.Background(), []string{lower, upper}, Config{}, filter)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("%d layers, %v", len(layers), err)
	}
	if got := layerEntries(t, layers[0]); got["etc/key"] != "an older file" || got["etc/plain"] != "kept" {
		t.Errorf("lower layer: %q", got)
	}
	got := layerEntries(t, layers[1])
	if _, ok := got["etc/.wh.key"]; !ok || got["etc/account"] != "root:!:1\n" {
		t.Errorf("upper layer: %q", got)
	}
	for name, body := range got {
		if strings.Contains(body, "SECRET") || strings.Contains(body, "HASH") || strings.HasSuffix(name, "first") || name == "b-second" {
			t.Errorf("upper layer has %s: %q", name, body)
		}
	}
	again, err := ExportFiltered(context.Background(), []string{lower, upper}, Config{}, filter)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("the same tree exported to %s, then %s", d1, d2)
	}
}

// layerEntries reads a layer's tar: each name with its content (a link's
// target for links).
func layerEntries(t *testing.T, l interface {
	Uncompressed() (io.ReadCloser, error)
}) map[string]string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeLink {
			body = []byte("link to " + hdr.Linkname)
		}
		out[hdr.Name] = string(body)
	}
}
