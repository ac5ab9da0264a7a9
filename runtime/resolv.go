package runtime

import (
	"net"
	"os"
	"strings"
)

// ResolvConf is the /etc/resolv.conf a container in network mode mode
// gets: none, nothing; host, the host's; bridge, the host's unless every
// nameserver in it is a loopback address (a local resolver such as
// systemd-resolved's 127.0.0.53, unreachable from the container's own
// namespace), in which case the resolver's upstream list, as Docker does.
func ResolvConf(mode NetworkMode) []byte {
	if mode == NetworkNone {
		return nil
	}
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	if mode == NetworkHost || !onlyLoopback(host) {
		return host
	}
	for _, p := range []string{"/run/systemd/resolve/resolv.conf"} {
		if up, err := os.ReadFile(p); err == nil && !onlyLoopback(up) {
			return up
		}
	}
	return host
}

// onlyLoopback reports whether every nameserver of a resolv.conf is on
// loopback (or there are none).
func onlyLoopback(conf []byte) bool {
	for _, line := range strings.Split(string(conf), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if ip := net.ParseIP(f[1]); ip != nil && !ip.IsLoopback() {
				return false
			}
		}
	}
	return true
}
