package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox/devbox/internal/testbase"
	"github.com/devbox/devbox/internal/testenv"
)

// netHost is a private network namespace that stands in for a host: an
// uplink address (192.0.2.77, a documentation range) with a greeting
// server on it, and room for the bridges and routes other tools leave.
type netHost struct {
	ns   string
	wrap []string // runs devbox there
	addr string   // the greeting server, host:port
}

func newNetHost(t *testing.T) *netHost {
	t.Helper()
	testenv.NeedRoot(t)
	h := &netHost{ns: testNetns(t)}
	h.wrap = []string{"ip", "netns", "exec", h.ns}
	h.ip(t, "link add uplink0 type veth peer name uplink0p", "link set uplink0p up", "addr add 192.0.2.77/24 dev uplink0", "link set uplink0 up")
	srv := exec.Command("ip", "netns", "exec", h.ns, helperBin, "hello-server", "8099")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	h.addr = "192.0.2.77:8099"
	return h
}

// dump logs the namespace's links, routes and nftables rules, to tell
// why a test failed.
func (h *netHost) dump(t *testing.T) {
	t.Helper()
	for _, c := range [][]string{{"ip", "-br", "addr"}, {"ip", "route"}, {"nft", "list", "ruleset"}} {
		out, _ := exec.Command("ip", append([]string{"netns", "exec", h.ns}, c...)...).CombinedOutput()
		t.Logf("%v:\n%s", c, out)
	}
}

// ip runs `ip -n NS` with each of cmds.
func (h *netHost) ip(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if out, err := exec.Command("ip", append([]string{"-n", h.ns}, strings.Fields(c)...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", c, err, out)
		}
	}
}

// bridgedSpace is a spec directory for a bridged container with the
// helper: top is the spec's top-level keys and tables, network more keys
// of its [network] table.
func bridgedSpace(t *testing.T, top, network string) string {
	t.Helper()
	dir := t.TempDir()
	spec := fmt.Sprintf("base = %q\n%s\n[network]\nmode = \"bridge\"\n%s\n[[mounts]]\nsource = %q\ntarget = \"/helper\"\nreadonly = true\n",
		testbase.DebianRef, top, network, helperBin)
	if err := os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// greeted runs the helper in a one-shot container of dir and returns its
// address and whether it reached the host's greeting server.
func (h *netHost) greeted(t *testing.T, wrap []string, root, dir string) (addr string, ok bool, r result) {
	t.Helper()
	r = devboxIn(t, wrap, dir, "--root", root, "run", "--", "/bin/sh", "-c", "/helper addrs; /helper dial "+h.addr)
	ips := containerAddrs(r.stdout)
	if len(ips) == 1 {
		addr = ips[0]
	}
	return addr, r.code == 0 && strings.Contains(r.stdout, "hello container"), r
}

// inNet reports whether addr lies in cidr.
func inNet(addr, cidr string) bool {
	_, n, _ := net.ParseCIDR(cidr)
	ip := net.ParseIP(addr)
	return ip != nil && n.Contains(ip)
}

// TestNetworkCoexists: devbox's bridge lives beside podman's, Docker's
// and a VPN's networks: it takes a subnet none of them holds, a named
// subnet that collides is refused naming the interface, the host's own
// iptables need not exist, and a firewall chain that drops is named.
func TestNetworkCoexists(t *testing.T) {
	testbase.Debian(t)
	h := newNetHost(t)
	root := filepath.Join(testenv.CacheDir(), "store")

	// podman's default network, up before devbox.
	h.ip(t, "link add podman0 type bridge", "addr add 10.88.0.1/16 dev podman0", "link set podman0 up")
	addr, ok, r := h.greeted(t, h.wrap, root, bridgedSpace(t, "", ""))
	if !ok || addr == "" || inNet(addr, "10.88.0.0/16") {
		t.Fatalf("beside podman0: address %q, reached %v: %q %s", addr, ok, r.stdout, r.stderr)
	}
	named := bridgedSpace(t, "", "subnet = \"10.88.0.0/16\"")
	if r := devboxIn(t, h.wrap, named, "--root", root, "run", "--", "true"); r.code == 0 || !strings.Contains(r.stderr, "taken by podman0") {
		t.Errorf("a named subnet that podman0 holds: exit %d, %s", r.code, r.stderr)
	}

	// Docker's bridge and a VPN's route over all of 10/8.
	h.ip(t, "link add docker0 type bridge", "addr add 172.17.0.1/16 dev docker0", "link set docker0 up",
		"link add vpn0 type veth peer name vpn0p", "link set vpn0p up", "link set vpn0 up", "route add 10.0.0.0/8 dev vpn0")
	addr, ok, r = h.greeted(t, h.wrap, root, bridgedSpace(t, "", ""))
	if !ok || addr == "" || inNet(addr, "10.0.0.0/8") || inNet(addr, "172.17.0.0/16") {
		t.Fatalf("beside docker0 and a VPN: address %q, reached %v: %q %s", addr, ok, r.stdout, r.stderr)
	}

	// A host with nftables only: no iptables command anywhere on PATH.
	bin := t.TempDir()
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Fatal("nft is not installed (make test installs nftables)")
	}
	os.Symlink(nft, filepath.Join(bin, "nft"))
	nftOnly := append(h.wrap[:len(h.wrap):len(h.wrap)], "env", "PATH="+bin+":/usr/bin:/bin")
	if _, ok, r := h.greeted(t, nftOnly, root, bridgedSpace(t, "", "")); !ok {
		t.Errorf("with nftables only: %q %s", r.stdout, r.stderr)
	}

	// A firewall table whose forward chain drops: devbox's accepts cannot
	// outvote it, and devbox says so when it makes the bridge.
	nftIn := func(script string) {
		cmd := exec.Command("ip", "netns", "exec", h.ns, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft: %v: %s", err, out)
		}
	}
	nftIn("add table inet fw\nadd chain inet fw forward_drop { type filter hook forward priority 0; policy drop; }\n")
	if _, _, r := h.greeted(t, nftOnly, root, bridgedSpace(t, "", "")); !strings.Contains(r.stderr, "table inet fw chain forward_drop drop forwarded packets") {
		t.Errorf("a forward chain that drops was not named: %s", r.stderr)
	}
}

// TestNetworkPerEnvironment: three environments of two state roots share
// the bridge; removing one leaves the others' network working, and a
// route that goes wrong after set-up is named by devbox doctor.
func TestNetworkPerEnvironment(t *testing.T) {
	testbase.Debian(t)
	h := newNetHost(t)
	roots := []string{filepath.Join(testenv.CacheDir(), "store"), t.TempDir()}
	linkBase(t, roots[1])
	type env struct{ name, root, dir string }
	var envs []env
	for i, name := range []string{"neta", "netb", "netc"} {
		e := env{name, roots[i/2], bridgedSpace(t, fmt.Sprintf("name = %q\n[ssh]\nport = %d", name, freePort(t)), "")}
		devbox(t, e.dir, "--root", e.root, "rm", name)
		if r := devboxIn(t, h.wrap, e.dir, "--root", e.root, "up"); r.code != 0 {
			t.Fatalf("up %s: %d %s", name, r.code, tail(r.stderr))
		}
		t.Cleanup(func() { devbox(t, e.dir, "--root", e.root, "rm", name) })
		envs = append(envs, e)
	}
	dial := func(e env) result {
		return devbox(t, e.dir, "--root", e.root, "exec", e.name, "--", "/helper", "dial", h.addr)
	}
	for _, e := range envs {
		if r := dial(e); !strings.Contains(r.stdout, "hello container") {
			t.Fatalf("%s before: %q %s", e.name, r.stdout, r.stderr)
		}
	}
	if r := devboxIn(t, h.wrap, envs[0].dir, "--root", envs[0].root, "rm", "neta"); r.code != 0 {
		t.Fatalf("rm neta: %s", r.stderr)
	}
	for _, e := range envs[1:] {
		if r := dial(e); !strings.Contains(r.stdout, "hello container") {
			t.Errorf("%s after another root's environment was removed: %q %s", e.name, r.stdout, r.stderr)
			h.dump(t)
		}
	}
	if r := devboxIn(t, h.wrap, envs[2].dir, "--root", envs[2].root, "doctor"); r.code != 0 || !strings.Contains(r.stdout, "ok: 1") {
		t.Errorf("doctor on a sound host: exit %d %q %s", r.code, r.stdout, r.stderr)
	}

	// The silent case: a route that takes netc's address elsewhere.
	r := devbox(t, envs[2].dir, "--root", envs[2].root, "ps", "--json")
	var listed []struct{ Name, IP string }
	json.Unmarshal([]byte(r.stdout), &listed)
	var ip string
	for _, l := range listed {
		if l.Name == "netc" {
			ip = l.IP
		}
	}
	if ip == "" {
		t.Fatalf("netc's address is not in ps --json: %q", r.stdout)
	}
	h.ip(t, "link add vpn1 type veth peer name vpn1p", "link set vpn1p up", "link set vpn1 up", "route add "+ip+"/32 dev vpn1")
	r = devboxIn(t, h.wrap, envs[2].dir, "--root", envs[2].root, "doctor")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code == 0 || len(lines) != 1 || !strings.Contains(lines[0], "goes to vpn1") {
		t.Errorf("doctor with netc's route taken: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
}
