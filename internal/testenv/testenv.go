// Package testenv holds what tests of several packages (and the
// benchmarks) share and that depends on no devbox package (so that any
// package's own tests can use it): the root check, in-process registries
// (one that stalls downloads too), a free port, the cache directory and
// the ordinary user of rootless tests, and a private Docker daemon as an
// oracle.
package testenv

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// FreePort is a loopback TCP port that nobody listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

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

// RootlessUser is an ordinary user that tests of rootless devbox run as
// (see EnsureRootlessUser).
func RootlessUser(tb testing.TB, name string, subids bool) *user.User {
	tb.Helper()
	NeedRoot(tb)
	u, err := EnsureRootlessUser(name, subids, func(m string) { tb.Log(m) })
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// EnsureRootlessUser makes, on first use, an ordinary user that tests and
// benchmarks of rootless devbox run as, with a home, and with subordinate
// ids (which Debian's useradd gives each new user; added above every other
// range when it did not) or, if not subids, none. The host's /dev/net/tun
// is made 0666, the mode udev gives it on a standard host, for pasta.
func EnsureRootlessUser(name string, subids bool, logf func(string)) (*user.User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("useradd %s: %v: %s", name, err, out)
		}
		if u, err = user.Lookup(name); err != nil {
			return nil, err
		}
	}
	if start, count, ok := SubIDs(name); ok && !subids {
		span := fmt.Sprintf("%d-%d", start, start+count-1)
		if out, err := exec.Command("usermod", "--del-subuids", span, "--del-subgids", span, name).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("usermod %s: %v: %s", name, err, out)
		}
	} else if !ok && subids {
		next := nextFreeSubID()
		span := fmt.Sprintf("%d-%d", next, next+65535)
		if out, err := exec.Command("usermod", "--add-subuids", span, "--add-subgids", span, name).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("usermod %s: %v: %s", name, err, out)
		}
	}
	if fi, err := os.Stat("/dev/net/tun"); err == nil && fi.Mode().Perm()&0o006 != 0o006 {
		logf(fmt.Sprintf("chmod 0666 /dev/net/tun (udev's mode; this host has %v)", fi.Mode().Perm()))
		if err := os.Chmod("/dev/net/tun", 0o666); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// SubIDs is name's first subordinate uid range in /etc/subuid, if any.
func SubIDs(name string) (start, count int, ok bool) {
	data, _ := os.ReadFile("/etc/subuid")
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) == 3 && f[0] == name {
			s, err1 := strconv.Atoi(f[1])
			c, err2 := strconv.Atoi(f[2])
			if err1 == nil && err2 == nil {
				return s, c, true
			}
		}
	}
	return 0, 0, false
}

// nextFreeSubID is the first id above every range of /etc/subuid and
// /etc/subgid, and at least 100000.
func nextFreeSubID() int {
	next := 100000
	for _, p := range []string{"/etc/subuid", "/etc/subgid"} {
		data, _ := os.ReadFile(p)
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Split(strings.TrimSpace(line), ":")
			if len(f) != 3 {
				continue
			}
			s, err1 := strconv.Atoi(f[1])
			c, err2 := strconv.Atoi(f[2])
			if err1 == nil && err2 == nil && s+c > next {
				next = s + c
			}
		}
	}
	return next
}
