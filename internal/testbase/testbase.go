// Package testbase gives tests and benchmarks a real Debian base without a
// container registry: a debootstrapped bookworm, built once into a store
// kept outside the repository (testenv.CacheDir) and reused by later runs.
package testbase

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/devbox/devbox/internal/state"
	"github.com/devbox/devbox/internal/testenv"
	"github.com/devbox/devbox/rootfs"
)

// DebianRef is the base the tests use.
const DebianRef = "debootstrap:bookworm"

// Debian returns the cache store and its debootstrapped bookworm image,
// making it on first use (about 25 s from Debian's archive).
func Debian(tb testing.TB) (*rootfs.Store, *rootfs.Image) {
	tb.Helper()
	testenv.NeedRoot(tb) // debootstrap
	s, img, err := DebianImage(func(m string) { tb.Log(m) })
	if err != nil {
		tb.Fatal(err)
	}
	return s, img
}

// DebianImage is Debian for programs (benchmarks) rather than tests.
func DebianImage(logf func(string)) (*rootfs.Store, *rootfs.Image, error) {
	s, err := rootfs.Open(filepath.Join(testenv.CacheDir(), "store"))
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

// Seed makes the fresh state root root see the cached Debian image, with
// links to its layers (cheap: they are unpacked once, in the cache), so a
// test or benchmark starts from a store that has the base and nothing else.
func Seed(cache *rootfs.Store, img *rootfs.Image, root string) error {
	r := state.Root(root)
	for _, d := range []string{r.Layers(), r.Images()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	for _, id := range img.Layers {
		if err := os.Symlink(cache.LayerDir(id), r.Layer(id)); err != nil {
			return err
		}
		data, err := os.ReadFile(cache.LayerDir(id) + ".json")
		if err != nil {
			return err
		}
		if err := os.WriteFile(r.Layer(id)+".json", data, 0o600); err != nil {
			return err
		}
	}
	recs, _ := filepath.Glob(filepath.Join(cache.Root().Images(), "*.json"))
	for _, f := range recs {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if strings.Contains(string(data), DebianRef) {
			if err := os.WriteFile(filepath.Join(r.Images(), filepath.Base(f)), data, 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}

// ServeDebian exports the cached Debian image and pushes it to a new
// loopback registry, as a team would serve debian:bookworm. It returns the
// reference, the image as pushed, and the server, for the caller to close.
func ServeDebian(store *rootfs.Store, img *rootfs.Image) (ref string, pushed v1.Image, srv *httptest.Server, err error) {
	lower := store.LowerDirs(img)
	slices.Reverse(lower)
	pushed, err = rootfs.Export(context.Background(), lower, img.Config)
	if err != nil {
		return "", nil, nil, err
	}
	srv = httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	ref = strings.TrimPrefix(srv.URL, "http://") + "/library/debian:bookworm"
	r, err := name.ParseReference(ref)
	if err == nil {
		err = remote.Write(r, pushed)
	}
	if err != nil {
		srv.Close()
		return "", nil, nil, fmt.Errorf("serve debian: %w", err)
	}
	return ref, pushed, srv, nil
}

// ServeDebianBase serves the test's Debian base (made, or taken from the
// cache, telling logf) on a loopback registry, as benchmarks pull it: ref
// is its reference, stop ends the server.
func ServeDebianBase(logf func(string)) (ref string, stop func(), err error) {
	store, img, err := DebianImage(logf)
	if err != nil {
		return "", nil, err
	}
	ref, _, srv, err := ServeDebian(store, img)
	if err != nil {
		return "", nil, err
	}
	return ref, srv.Close, nil
}
