package runtime

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/internal/lockfile"
	"github.com/devbox/devbox/internal/proc"
)

// Bridge networking: a devbox0 bridge with the first address of a subnet
// chosen free on the host (subnet.go), one veth pair per container, IPv4
// forwarding and each container's own nftables rules (nat.go). The bridge
// and its table exist while a container uses them and are removed with
// the last one.
//
// The bridge, its subnet and its table belong to a network namespace, not
// to a state root, and so do their address allocations: every devbox on
// the host that runs in one namespace, whatever its --root, shares one
// allocation directory (AllocDir), so two state roots never hand out the
// same address, and the bridge goes only with the last container of all.
const (
	BridgeName = "devbox0"
	nftTable   = "devbox"
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

// lease is a container's address on the bridge: where it is allocated,
// the address, and the allocation file's content, which names the
// container (so that a late release cannot free it once another holds it).
type lease struct {
	dir   string
	ip    net.IP
	owner string
	// warning is what the host's firewall may do to the bridge's
	// traffic, told when the bridge is made.
	warning string
}

// connectBridge gives the container whose init is pid an address on the
// bridge (made on a free subnet if it does not exist: see pickSubnet),
// its own NAT and forward rules, its group's membership if it has one
// (netgroup.go), and checks that the host routes its
// address back to the bridge. releaseAddr(l) undoes it.
func connectBridge(dir, subnet, id, group string, pid int) (l lease, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return l, err
	}
	unlock, err := lockfile.Lock(filepath.Join(dir, "lock"))
	if err != nil {
		return l, err
	}
	defer unlock()

	first := liveAddrs(dir) == 0
	br, ipnet, err := ensureBridge(subnet, first)
	if err != nil {
		if first {
			teardownBridge() // what it made of the bridge serves no one
		}
		return l, err
	}
	l = lease{dir: dir, owner: fmt.Sprintf("%s %s\n", id, proc.Of(pid))}
	if first {
		l.warning = firewallWarning()
	}
	if l.ip, err = allocate(dir, ipnet, l.owner); err != nil {
		return l, err
	}
	err = plugVeth(br, pid, l.ip, ipnet, nthAddr(ipnet, 1))
	if err == nil {
		err = addRules(l.ip)
	}
	if err == nil && group != "" {
		err = joinGroup(group, l.ip)
	}
	if err == nil {
		err = checkRoute(l.ip)
	}
	if err != nil {
		// The lock is ours already: releaseAddr would wait for it forever.
		os.Remove(filepath.Join(dir, "ip-"+l.ip.String()))
		if liveAddrs(dir) == 0 {
			teardownBridge()
		} else {
			removeRules([]net.IP{l.ip})
		}
		return lease{}, err
	}
	return l, nil
}

// releaseAddr frees l's address, if l's container still holds it, and
// its rules, and what dead containers hold; when no container is left on
// the bridge, it removes the bridge and its nftables table. A lease of
// another network namespace (devbox down from an `ip netns exec`) only
// loses its files: the caller's links and rules are not its.
func releaseAddr(l lease) {
	if _, err := os.Stat(l.dir); err != nil {
		return // nothing was ever allocated in this namespace
	}
	unlock, err := lockfile.Lock(filepath.Join(l.dir, "lock"))
	if err != nil {
		return
	}
	defer unlock()
	var gone []net.IP
	if l.ip != nil {
		p := filepath.Join(l.dir, "ip-"+l.ip.String())
		if data, err := os.ReadFile(p); err == nil && (string(data) == l.owner || l.owner == "" && staleOwner(p)) {
			os.Remove(p)
			gone = append(gone, l.ip)
		}
	}
	left, _ := filepath.Glob(filepath.Join(l.dir, "ip-*"))
	live := 0
	for _, p := range left {
		if staleOwner(p) {
			os.Remove(p) // a container whose devbox was killed before it could release
			gone = append(gone, net.ParseIP(strings.TrimPrefix(filepath.Base(p), "ip-")))
		} else {
			live++
		}
	}
	if own, _ := AllocDir(); own != l.dir {
		return
	}
	// Only an address that was given up, or a teardown that was killed
	// half-way (the bridge is removed last), leaves the bridge unused: a
	// sweep with nothing to release runs no nft or iptables.
	switch {
	case live == 0 && (len(gone) > 0 || bridgeExists()):
		teardownBridge()
	case len(gone) > 0:
		removeRules(gone)
	}
}

// bridgeExists says whether devbox's bridge is in the caller's network
// namespace.
func bridgeExists() bool {
	_, err := netlink.LinkByName(BridgeName)
	return err == nil
}

// liveAddrs is how many containers hold an address on the bridge.
func liveAddrs(dir string) int {
	held, _ := filepath.Glob(filepath.Join(dir, "ip-*"))
	live := 0
	for _, p := range held {
		if !staleOwner(p) {
			live++
		}
	}
	return live
}

// ensureBridge returns the bridge and its subnet: the one it serves, or,
// made anew, want or the first free subnet of the host's pools. A bridge
// that serves no container (unused, left by a killed devbox or an older
// one) takes its subnet anew: what was free when it was made may not be.
func ensureBridge(want string, unused bool) (netlink.Link, *net.IPNet, error) {
	br, ipnet, err := existingBridge()
	if err != nil {
		return nil, nil, err
	}
	if ipnet != nil && unused {
		// Its table too: an older devbox's rules were for the subnet.
		if err := flushAddrs(br); err != nil {
			return nil, nil, err
		}
		nft("delete table ip " + nftTable)
		ipnet = nil
	}
	if ipnet != nil && want != "" && ipnet.String() != want {
		return nil, nil, fmt.Errorf("network: %s serves %s for running containers; [network] subnet = %q can be used once they stop", BridgeName, ipnet, want)
	}
	if ipnet == nil {
		held, err := hostNets()
		if err != nil {
			return nil, nil, err
		}
		pools, err := LoadPools(HostConfig)
		if err != nil {
			return nil, nil, fmt.Errorf("network: %w", err)
		}
		if ipnet, err = pickSubnet(want, pools, held); err != nil {
			return nil, nil, err
		}
		if br, err = makeBridge(br, ipnet); err != nil {
			return nil, nil, err
		}
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return nil, nil, fmt.Errorf("network: enable forwarding: %w", err)
	}
	if err := ensureTable(); err != nil {
		return nil, nil, err
	}
	if unused {
		// Once per bridge, as the bridge's own: teardownBridge removes
		// them with it, and every start need not ask iptables again.
		if err := allowForward(); err != nil {
			return nil, nil, err
		}
	}
	return br, ipnet, nil
}

// existingBridge is devbox's bridge, if there is one, and the subnet of
// its address, if it has one.
func existingBridge() (netlink.Link, *net.IPNet, error) {
	br, err := netlink.LinkByName(BridgeName)
	if err != nil {
		return nil, nil, nil
	}
	addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range addrs {
		return br, &net.IPNet{IP: a.IP.Mask(a.Mask), Mask: a.Mask}, nil
	}
	return br, nil, nil
}

// flushAddrs removes the IPv4 addresses of br.
func flushAddrs(br netlink.Link) error {
	addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if err := netlink.AddrDel(br, &a); err != nil {
			return fmt.Errorf("network: %s: remove %s: %w", BridgeName, a.IPNet, err)
		}
	}
	return nil
}

// makeBridge makes devbox's bridge (br, if it exists without an address)
// with the first address of ipnet.
func makeBridge(br netlink.Link, ipnet *net.IPNet) (netlink.Link, error) {
	if br == nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = BridgeName
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, syscall.EEXIST) {
			return nil, fmt.Errorf("network: create %s: %w", BridgeName, err)
		}
		var err error
		if br, err = netlink.LinkByName(BridgeName); err != nil {
			return nil, err
		}
	}
	gw := &netlink.Addr{IPNet: &net.IPNet{IP: nthAddr(ipnet, 1), Mask: ipnet.Mask}}
	if err := netlink.AddrAdd(br, gw); err != nil && !errors.Is(err, syscall.EEXIST) {
		return nil, fmt.Errorf("network: address %s: %w", gw.IPNet, err)
	}
	// A bridge without a MAC of its own takes its lowest port's, and
	// changes it when that container goes: every other container's ARP
	// entry for the gateway then points nowhere for half a minute. A
	// locally administered MAC made from the gateway's address stays.
	mac := append(net.HardwareAddr{0x02, 0xdb}, gw.IP.To4()...)
	if err := netlink.LinkSetHardwareAddr(br, mac); err != nil {
		return nil, fmt.Errorf("network: %s: set its address %s: %w", BridgeName, mac, err)
	}
	return br, nil
}

// allocate takes the lowest free address of the subnet for id. An address
// whose owner is gone (its init no longer runs) is free again.
func allocate(dir string, ipnet *net.IPNet, owner string) (net.IP, error) {
	ones, bits := ipnet.Mask.Size()
	size := 1 << (bits - ones)
	for i := 2; i < size-1; i++ {
		ip := nthAddr(ipnet, i)
		p := filepath.Join(dir, "ip-"+ip.String())
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			if !staleOwner(p) {
				continue
			}
			os.Remove(p)
			removeRules([]net.IP{ip}) // the dead one's, before they are the new one's
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
