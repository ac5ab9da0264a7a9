package rootfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/internal/idle"
	"github.com/devbox/devbox/internal/testenv"
)

func TestLayerLimits(t *testing.T) {
	cases := []struct {
		lim  layerLimits
		n    int64
		fail bool
	}{
		{layerLimits{max: 1 << 30, compressed: 100 << 20}, 900 << 20, false},
		{layerLimits{max: 1 << 30, compressed: 100 << 20}, 1<<30 + 1, true},
		{layerLimits{max: 32 << 30, compressed: 1 << 20}, 300 << 20, true},  // 300:1 past the floor
		{layerLimits{max: 32 << 30, compressed: 1 << 20}, 100 << 20, false}, // high ratio, small layer
		{layerLimits{max: 32 << 30, compressed: -1}, 10 << 30, false},       // unknown compressed size
	}
	for _, c := range cases {
		err := c.lim.check(c.n)
		if (err != nil) != c.fail || (err != nil && !errors.Is(err, ErrLayerTooLarge)) {
			t.Errorf("%+v at %d: %v", c.lim, c.n, err)
		}
	}
}

// bombImage is one layer of zeros: size bytes that gzip to almost nothing.
func bombImage(t *testing.T, size int64) v1.Image {
	t.Helper()
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: size, Typeflag: tar.TypeReg})
	io.Copy(tw, io.LimitReader(zeroReader{}, size))
	tw.Close()
	zw.Close()
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(gz.Bytes(), types.DockerLayer))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestDecompressionBomb: a layer of 1 MiB compressed that unpacks to far
// more than the store's file system holds fails with a clear error and
// leaves the file system as it was, where before it filled it.
func TestDecompressionBomb(t *testing.T) {
	testenv.NeedRoot(t)
	fs := t.TempDir()
	if err := unix.Mount("tmpfs", fs, "tmpfs", 0, "size=64m"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill: %v", err)
	}
	defer unix.Unmount(fs, unix.MNT_DETACH)
	s, err := Open(filepath.Join(fs, "store"))
	if err != nil {
		t.Fatal(err)
	}
	ref := push(t, testenv.Registry(t), "bomb", bombImage(t, 200<<20))
	_, err = s.Pull(context.Background(), ref, PullOptions{})
	if !errors.Is(err, ErrLayerTooLarge) {
		t.Fatalf("pull of a bomb: %v, want ErrLayerTooLarge", err)
	}
	var st unix.Statfs_t
	unix.Statfs(fs, &st)
	if free := int64(st.Bavail) * int64(st.Bsize); free < 60<<20 {
		t.Errorf("the failed pull left %d MiB free of 64", free>>20)
	}
	if left, _ := os.ReadDir(s.Root().Tmp()); len(left) != 0 {
		t.Errorf("tmp/ keeps %d entries", len(left))
	}
}

// TestStalledRegistry: a registry that stops sending mid-blob fails the
// pull after the idle timeout instead of hanging it; a rerun once the
// registry answers again succeeds.
func TestStalledRegistry(t *testing.T) {
	testenv.NeedRoot(t)
	// A layer (not the config) is sent half, then nothing.
	reg := testenv.NewStallingRegistry(t, func(_ string, blob []byte) (int, bool) {
		return len(blob) / 2, len(blob) > 1000
	})
	host := reg.Host
	ref := push(t, host, "stall", makeImage(t, []ent{file("a", strings.Repeat("x", 1<<20))}))
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Pull(context.Background(), ref, PullOptions{IdleTimeout: 500 * time.Millisecond})
	if !errors.Is(err, idle.ErrStalled) {
		t.Fatalf("pull from a stalled registry: %v, want ErrStalled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the stall was noticed after %s", d)
	}
	reg.Resume()
	if _, err := s.Pull(context.Background(), ref, PullOptions{IdleTimeout: 500 * time.Millisecond}); err != nil {
		t.Fatalf("rerun: %v", err)
	}
}
