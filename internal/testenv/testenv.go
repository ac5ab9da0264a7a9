// Package testenv holds what tests of several packages share and that
// depends on no devbox package (so that any package's own tests can use
// it): the root check, the in-process registry and the cache directory.
package testenv

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// CacheDir is where tests keep what is slow to make: $DEVBOX_TEST_CACHE,
// or /var/tmp/devbox-test-cache.
func CacheDir() string {
	if d := os.Getenv("DEVBOX_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/tmp/devbox-test-cache"
}

// NeedRoot skips a test that needs root (layer owners, xattrs, mounts,
// namespaces) when not run as root; CI runs as root, so there it runs.
func NeedRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (layer owners, mounts, namespaces); CI runs as root")
	}
}

// Registry serves go-containerregistry's in-process registry on loopback
// for the rest of the test and returns its host:port.
func Registry(tb testing.TB) string {
	tb.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	tb.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// HostAddress is an IPv4 address of this host that a container on
// devbox's bridge reaches (its own loopback is not the host's): the first
// of an interface that is up and not loopback, a bridge or a veth.
func HostAddress() (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 || strings.HasPrefix(i.Name, "devbox") || strings.HasPrefix(i.Name, "veth") {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				return n.IP.String(), nil
			}
		}
	}
	return "", errors.New("no non-loopback IPv4 address on this host")
}
