// Package testenv gives tests and benchmarks a real Debian base without a
// container registry: a debootstrapped bookworm, built once into a store
// kept outside the repository and reused by later runs.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/devbox/devbox/rootfs"
)

// CacheDir is where tests keep what is slow to make: $DEVBOX_TEST_CACHE,
// or /var/tmp/devbox-test-cache.
func CacheDir() string {
	if d := os.Getenv("DEVBOX_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/tmp/devbox-test-cache"
}

// DebianRef is the base the tests use.
const DebianRef = "debootstrap:bookworm"

// Debian returns the cache store and its debootstrapped bookworm image,
// making it on first use (about 25 s from Debian's archive).
func Debian(tb testing.TB) (*rootfs.Store, *rootfs.Image) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (debootstrap); CI runs as root")
	}
	s, img, err := DebianImage(func(m string) { tb.Log(m) })
	if err != nil {
		tb.Fatal(err)
	}
	return s, img
}

// DebianImage is Debian for programs (benchmarks) rather than tests.
func DebianImage(logf func(string)) (*rootfs.Store, *rootfs.Image, error) {
	s, err := rootfs.Open(filepath.Join(CacheDir(), "store"))
	if err != nil {
		return nil, nil, err
	}
	ref, _ := rootfs.ParseRef(DebianRef, "")
	img, err := s.Resolve(context.Background(), ref, rootfs.PullOptions{Log: logf})
	if err != nil {
		return nil, nil, fmt.Errorf("debian base: %w (needs debootstrap and Debian's archive)", err)
	}
	return s, img, nil
}
