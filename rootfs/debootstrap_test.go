package rootfs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox/devbox/internal/testbase"
	"github.com/devbox/devbox/rootfs"
)

// TestDebootstrapBase builds (or reuses) a real bookworm minbase from
// Debian's archive and checks it is a usable Debian, stored as one layer.
func TestDebootstrapBase(t *testing.T) {
	s, img := testbase.Debian(t)
	if len(img.Layers) != 1 {
		t.Fatalf("%d layers, want 1", len(img.Layers))
	}
	dir := s.LayerDir(img.Layers[0])
	v, err := os.ReadFile(filepath.Join(dir, "etc", "debian_version"))
	if err != nil || !strings.HasPrefix(string(v), "12.") {
		t.Errorf("debian_version = %q, %v", v, err)
	}
	for _, p := range []string{"usr/bin/apt-get", "usr/bin/dpkg", "bin/sh"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s missing: %v", p, err)
		}
	}
	// Stored: resolving again does not debootstrap again.
	ref, _ := rootfs.ParseRef(testbase.DebianRef, "")
	again, err := s.Resolve(context.Background(), ref, rootfs.PullOptions{})
	if err != nil || again.Digest != img.Digest || !again.Pulled.Equal(img.Pulled) {
		t.Errorf("second resolve rebuilt the base: %v", err)
	}
}
