package runtime

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/internal/lockfile"
	"github.com/devbox/devbox/internal/proc"
)

// Bridge networking: a devbox0 bridge with the subnet's first address,
// one veth pair per container, IPv4 forwarding and an nftables masquerade
// for traffic leaving the subnet. The bridge and its table exist while a
// container uses them and are removed with the last one.
//
// The bridge, its subnet and its table belong to a network namespace, not
// to a state root, and so do their address allocations: every devbox on
// the host that runs in one namespace, whatever its --root, shares one
// allocation directory (AllocDir), so two state roots never hand out the
// same address, and the bridge goes only with the last container of all.
const (
	BridgeName    = "devbox0"
	DefaultSubnet = "10.88.0.0/16"
	nftTable      = "devbox"
	// allocRoot holds the allocations of each network namespace; it is
	// runtime state, gone at reboot like the bridges it describes.
	allocRoot = "/run/devbox"
)

// AllocDir is the address allocation directory of the caller's network
// namespace.
func AllocDir() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return "", fmt.Errorf("network: own namespace: %w", err)
	}
	return filepath.Join(allocRoot, fmt.Sprintf("net-%d", st.Ino)), nil
}

// connectBridge gives the container whose init is pid an address on the
// bridge. release undoes it.
func connectBridge(dir, subnet, id string, pid int) (ip string, release func(), err error) {
	if subnet == "" {
		subnet = DefaultSubnet
	}
	_, ipnet, err := net.ParseCIDR(subnet)
	if err != nil {
		return "", nil, fmt.Errorf("network: subnet %q: %w", subnet, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	unlock, err := lockfile.Lock(filepath.Join(dir, "lock"))
	if err != nil {
		return "", nil, err
	}
	defer unlock()

	gw := nthAddr(ipnet, 1)
	br, err := ensureBridge(ipnet, gw)
	if err != nil {
		return "", nil, err
	}
	addr, err := allocate(dir, ipnet, id, pid)
	if err != nil {
		return "", nil, err
	}
	if err := plugVeth(br, pid, addr, ipnet, gw); err != nil {
		// The lock is ours already: releaseAddr would wait for it forever.
		os.Remove(filepath.Join(dir, "ip-"+addr.String()))
		return "", nil, err
	}
	return addr.String(), func() { releaseAddr(dir, addr) }, nil
}

// releaseAddr frees the address (nil: only what dead containers hold)
// and, when no container is left on the bridge, removes the bridge and its
// nftables table.
func releaseAddr(dir string, addr net.IP) {
	if _, err := os.Stat(dir); err != nil {
		return // nothing was ever allocated in this namespace
	}
	unlock, err := lockfile.Lock(filepath.Join(dir, "lock"))
	if err != nil {
		return
	}
	defer unlock()
	if addr != nil {
		os.Remove(filepath.Join(dir, "ip-"+addr.String()))
	}
	left, _ := filepath.Glob(filepath.Join(dir, "ip-*"))
	live := 0
	for _, p := range left {
		if staleOwner(p) {
			os.Remove(p) // a container whose devbox was killed before it could release
		} else {
			live++
		}
	}
	// Only an address that was given up can leave the bridge unused: a
	// sweep with nothing to release runs no nft or iptables.
	if live == 0 && (addr != nil || len(left) > 0) {
		teardownBridge()
	}
}

func ensureBridge(ipnet *net.IPNet, gw net.IP) (netlink.Link, error) {
	ones, _ := ipnet.Mask.Size()
	br, err := netlink.LinkByName(BridgeName)
	if err != nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = BridgeName
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, syscall.EEXIST) {
			return nil, fmt.Errorf("network: create %s: %w", BridgeName, err)
		}
		if br, err = netlink.LinkByName(BridgeName); err != nil {
			return nil, err
		}
	}
	want := &netlink.Addr{IPNet: &net.IPNet{IP: gw, Mask: ipnet.Mask}}
	addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	have := false
	for _, a := range addrs {
		if a.IPNet.String() == want.IPNet.String() {
			have = true
		} else if a.Contains(gw) || ipnet.Contains(a.IP) {
			return nil, fmt.Errorf("network: %s has address %s, not %s/%d: another subnet is in use", BridgeName, a.IPNet, gw, ones)
		}
	}
	if !have {
		if err := netlink.AddrAdd(br, want); err != nil && !errors.Is(err, syscall.EEXIST) {
			return nil, fmt.Errorf("network: address %s: %w", want.IPNet, err)
		}
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, err
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return nil, fmt.Errorf("network: enable forwarding: %w", err)
	}
	if err := ensureNAT(ipnet); err != nil {
		return nil, err
	}
	return br, nil
}

// ensureNAT installs the masquerade and forward rules, once.
func ensureNAT(ipnet *net.IPNet) error {
	if exec.Command("nft", "list", "table", "ip", nftTable).Run() == nil {
		return nil
	}
	rules := fmt.Sprintf(`table ip %[1]s {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %[2]s oifname != "%[3]s" masquerade
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "%[3]s" accept
		oifname "%[3]s" ct state established,related accept
	}
}
`, nftTable, ipnet.String(), BridgeName)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return errors.New("network: nft not found (apt-get install nftables), or use [network] mode = \"none\" or \"host\"")
		}
		return fmt.Errorf("network: nftables: %v: %s", err, out)
	}
	return allowForward()
}

func teardownBridge() {
	if br, err := netlink.LinkByName(BridgeName); err == nil {
		netlink.LinkDel(br)
	}
	exec.Command("nft", "delete", "table", "ip", nftTable).Run()
	removeForwardRules()
}

// forwardRules accept the bridge's traffic in iptables' filter FORWARD
// chain. A packet must pass every forward base chain, so devbox's own
// nftables accepts do not outvote a DROP policy there (Docker, ufw and
// firewalld set one); like Docker's DOCKER-USER, libvirt and LXD, devbox
// inserts its accepts at the head of that chain, through whatever backend
// the host's iptables command uses, with a comment to find them by.
var forwardRules = [][]string{
	{"-i", BridgeName, "-j", "ACCEPT", "-m", "comment", "--comment", "devbox"},
	{"-o", BridgeName, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT", "-m", "comment", "--comment", "devbox"},
}

// allowForward inserts forwardRules once, where the host has an iptables
// FORWARD chain: without an iptables command, or with the nf_tables backend
// and no filter FORWARD chain yet, there is no policy to pass, and
// inserting would create a table that would stay behind.
func allowForward() error {
	ipt, err := exec.LookPath("iptables")
	if err != nil {
		return nil
	}
	if v, _ := exec.Command(ipt, "-V").Output(); strings.Contains(string(v), "nf_tables") &&
		exec.Command("nft", "list", "chain", "ip", "filter", "FORWARD").Run() != nil {
		return nil
	}
	for _, r := range forwardRules {
		if exec.Command(ipt, append([]string{"-w", "-C", "FORWARD"}, r...)...).Run() == nil {
			continue
		}
		if out, err := exec.Command(ipt, append([]string{"-w", "-I", "FORWARD"}, r...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("network: iptables -I FORWARD %s: %v: %s", strings.Join(r, " "), err, out)
		}
	}
	return nil
}

// removeForwardRules deletes every copy of forwardRules.
func removeForwardRules() {
	ipt, err := exec.LookPath("iptables")
	if err != nil {
		return
	}
	for _, r := range forwardRules {
		for i := 0; i < 10 && exec.Command(ipt, append([]string{"-w", "-D", "FORWARD"}, r...)...).Run() == nil; i++ {
		}
	}
}

// allocate takes the lowest free address of the subnet for id. An address
// whose owner is gone (its init no longer runs) is free again.
func allocate(dir string, ipnet *net.IPNet, id string, pid int) (net.IP, error) {
	ones, bits := ipnet.Mask.Size()
	size := 1 << (bits - ones)
	for i := 2; i < size-1; i++ {
		ip := nthAddr(ipnet, i)
		p := filepath.Join(dir, "ip-"+ip.String())
		owner := fmt.Sprintf("%s %s\n", id, proc.Of(pid))
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			if !staleOwner(p) {
				continue
			}
			os.Remove(p)
			f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		}
		if err != nil {
			return nil, err
		}
		_, err = f.WriteString(owner)
		f.Close()
		return ip, err
	}
	return nil, fmt.Errorf("network: no free address in %s", ipnet)
}

// staleOwner reports whether the container recorded in an allocation file
// has ended (its init is gone, or the PID now belongs to another process).
func staleOwner(p string) bool {
	data, err := os.ReadFile(p)
	if err != nil {
		return true
	}
	_, owner, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
	return !proc.Parse(owner).Alive()
}

func nthAddr(ipnet *net.IPNet, n int) net.IP {
	base := binary.BigEndian.Uint32(ipnet.IP.To4())
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, base+uint32(n))
	return ip
}

// plugVeth connects the container to the bridge: a veth pair whose peer
// is created directly in the container's namespace as eth0. The pair is
// named after the address, which is unique among the namespace's live
// containers (their ids need not be: two state roots may both run "app").
func plugVeth(br netlink.Link, pid int, ip net.IP, ipnet *net.IPNet, gw net.IP) error {
	host, peer := vethNames(ip)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = host
	attrs.MasterIndex = br.Attrs().Index
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: peer, PeerNamespace: netlink.NsPid(pid)}
	err := netlink.LinkAdd(veth)
	if errors.Is(err, syscall.EEXIST) {
		// The veth of the container that last had this address: its init
		// is gone and its address released, but the kernel tears a dead
		// network namespace down (and its veths with it) asynchronously,
		// so the pair can outlive it by a moment. The address is ours
		// (we hold the allocation lock), so the link is stale.
		if old, lerr := netlink.LinkByName(host); lerr == nil {
			netlink.LinkDel(old) // gone by itself meanwhile is as good
		}
		err = netlink.LinkAdd(veth)
	}
	if err != nil {
		return fmt.Errorf("network: veth %s: %w", host, err)
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		return err
	}
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("network: container namespace: %w", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("network: %s in container: %w", peer, err)
	}
	if err := h.LinkSetName(link, "eth0"); err != nil {
		return err
	}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: ipnet.Mask}}); err != nil {
		return fmt.Errorf("network: address %s: %w", ip, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return err
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw}); err != nil {
		return fmt.Errorf("network: default route: %w", err)
	}
	return nil
}

// vethNames are the host and container ends of the veth of the container
// at ip: "dbx" and "dbp" with the address in hex (11 bytes, under 15).
func vethNames(ip net.IP) (host, peer string) {
	h := hex.EncodeToString(ip.To4())
	return "dbx" + h, "dbp" + h
}

// VethName is the host end of the veth of the container at ip.
func VethName(ip string) string {
	host, _ := vethNames(net.ParseIP(ip))
	return host
}
