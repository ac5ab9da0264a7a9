package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/devbox/devbox/internal/idle"
	"github.com/devbox/devbox/internal/testenv"
	"github.com/devbox/devbox/rootfs"
)

// featureImage is a feature artifact: one layer holding its
// devcontainer-feature.json and install.sh.
func featureImage(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range map[string]string{
		"devcontainer-feature.json": `{"id": "x", "version": "1.0.0"}`,
		"install.sh":                "#!/bin/sh\ntrue\n",
	} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	return b.Bytes()
}

// TestFeatureRegistryStalls: a registry that sends a feature's blob
// headers and then nothing failed to end the build (no idle timeout on
// the feature's fetch); now it fails within the timeout, leaves nothing
// half-written, and a rerun once the registry answers succeeds.
func TestFeatureRegistryStalls(t *testing.T) {
	data := featureImage(t)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	ld, err := layer.Digest()
	if err != nil {
		t.Fatal(err)
	}
	// The layer's download sends its headers and never a byte of body.
	reg := testenv.NewStallingRegistry(t, func(path string, _ []byte) (int, bool) {
		return 0, strings.HasSuffix(path, "/blobs/"+ld.String())
	})
	ref := reg.Host + "/features/x:1"
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts := rootfs.PullOptions{IdleTimeout: 300 * time.Millisecond}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, _, err := fetchFeature(context.Background(), dir, ref, "", "", opts)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, idle.ErrStalled) {
			t.Fatalf("fetch from a stalled registry: %v, want ErrStalled", err)
		}
		t.Logf("failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(10 * time.Second):
		t.Fatal("the fetch still hangs 10 s into a registry's stall (idle timeout 300 ms)")
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the failed fetch left %d entries in %s", len(left), dir)
	}
	reg.Resume()
	folder, _, err := fetchFeature(context.Background(), dir, ref, "", "", opts)
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if _, err := os.Stat(folder + "/install.sh"); err != nil {
		t.Errorf("rerun: %v", err)
	}
}
