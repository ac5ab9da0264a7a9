package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/BurntSushi/toml"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The bridge's subnet is chosen when the bridge is made, from address
// pools (as Docker's default-address-pools): the first subnet of the
// pools that no address or route of the host overlaps, so that devbox
// lives beside podman (10.88.0.0/16), Docker (172.17.0.0/16 and its
// pools), libvirt (192.168.122.0/24), a VPN's routes and a cluster's node
// network. The bridge, and with it the subnet, is shared by every state
// root in the network namespace (see AllocDir) while a container uses it.

// Pool is a range that subnets are cut from: Base in subnets of prefix
// length Size.
type Pool struct {
	Base string `toml:"base"`
	Size int    `toml:"size"`
}

// DefaultPools are tried when the host names none: ranges that podman,
// Docker, libvirt and Kubernetes' defaults leave alone, /20 each (4094
// containers).
var DefaultPools = []Pool{{"10.99.0.0/16", 20}, {"172.29.0.0/16", 20}, {"192.168.224.0/19", 22}}

// HostConfig is the host-wide setting of devbox's network:
//
//	[[network.address_pools]]
//	base = "10.99.0.0/16"
//	size = 20
const HostConfig = "/etc/devbox/network.toml"

// LoadPools reads the address pools of the host-wide setting at path; a
// missing file, or one that names none, gives DefaultPools.
func LoadPools(path string) ([]Pool, error) {
	var cfg struct {
		Network struct {
			AddressPools []Pool `toml:"address_pools"`
		} `toml:"network"`
	}
	md, err := toml.DecodeFile(path, &cfg)
	if errors.Is(err, os.ErrNotExist) {
		return DefaultPools, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: unknown key %s", path, und[0])
	}
	for i, p := range cfg.Network.AddressPools {
		_, base, err := net.ParseCIDR(p.Base)
		if err == nil && base.IP.To4() != nil {
			if ones, _ := base.Mask.Size(); p.Size >= ones && p.Size <= 29 && p.Size-ones <= 16 {
				continue
			}
		}
		return nil, fmt.Errorf("%s: network.address_pools.%d: want an IPv4 base CIDR and a size from its prefix length (at most 16 more) to 29, got %q and %d", path, i, p.Base, p.Size)
	}
	if len(cfg.Network.AddressPools) == 0 {
		return DefaultPools, nil
	}
	return cfg.Network.AddressPools, nil
}

// heldNet is a network the host already uses, and the interface that
// holds it.
type heldNet struct {
	net  *net.IPNet
	link string
}

// hostNets are the IPv4 networks of the host's addresses and routes (of
// every table: a VPN may route from its own), but devbox's bridge's and
// default routes.
func hostNets() ([]heldNet, error) {
	names := map[int]string{}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("network: list interfaces: %w", err)
	}
	var held []heldNet
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
		if l.Attrs().Name == BridgeName {
			continue
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return nil, fmt.Errorf("network: addresses of %s: %w", l.Attrs().Name, err)
		}
		for _, a := range addrs {
			held = append(held, heldNet{&net.IPNet{IP: a.IP.Mask(a.Mask), Mask: a.Mask}, l.Attrs().Name})
		}
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("network: list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil || names[r.LinkIndex] == BridgeName || r.Table == unix.RT_TABLE_LOCAL {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones < 8 {
			// A default route, or a full-tunnel VPN's two halves (0/1
			// and 128/1), overlaps everything and holds nothing: the
			// bridge's own route is more specific and wins.
			continue
		}
		name := names[r.LinkIndex]
		if name == "" {
			name = "a route of table " + fmt.Sprint(r.Table)
		}
		held = append(held, heldNet{r.Dst, name})
	}
	return held, nil
}

// overlap reports whether two networks share an address.
func overlap(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

// holder is the first of held that overlaps n, if any.
func holder(n *net.IPNet, held []heldNet) (heldNet, bool) {
	for _, h := range held {
		if overlap(n, h.net) {
			return h, true
		}
	}
	return heldNet{}, false
}

// pickSubnet is the subnet for a new bridge: want (a spec's subnet),
// which must be free, or else the first free subnet of the pools.
func pickSubnet(want string, pools []Pool, held []heldNet) (*net.IPNet, error) {
	if want != "" {
		_, n, err := net.ParseCIDR(want)
		if err != nil {
			return nil, fmt.Errorf("network: subnet %q: %w", want, err)
		}
		if h, taken := holder(n, held); taken {
			return nil, fmt.Errorf("network: subnet %s is taken by %s (%s): name another in [network] subnet, or leave it out and devbox chooses a free one", n, h.link, h.net)
		}
		return n, nil
	}
	for _, p := range pools {
		_, base, err := net.ParseCIDR(p.Base)
		if err != nil {
			return nil, fmt.Errorf("network: pool %q: %w", p.Base, err)
		}
		ones, bits := base.Mask.Size()
		start := binary.BigEndian.Uint32(base.IP.To4())
		for i := uint64(0); i < 1<<(p.Size-ones); i++ {
			ip := make(net.IP, 4)
			binary.BigEndian.PutUint32(ip, start+uint32(i<<(bits-p.Size)))
			n := &net.IPNet{IP: ip, Mask: net.CIDRMask(p.Size, bits)}
			if _, taken := holder(n, held); !taken {
				return n, nil
			}
		}
	}
	return nil, fmt.Errorf("network: every subnet of the address pools is in use on this host (%v); add a pool in %s", pools, HostConfig)
}

// checkRoute verifies that the host routes ip back to devbox's bridge:
// another interface with an overlapping, more specific or older route
// would take the container's replies, and its traffic would vanish.
func checkRoute(ip net.IP) error {
	br, err := netlink.LinkByName(BridgeName)
	if err != nil {
		return fmt.Errorf("network: %s is gone: %w", BridgeName, err)
	}
	routes, err := netlink.RouteGet(ip)
	if err != nil {
		return fmt.Errorf("network: route to %s: %w", ip, err)
	}
	if len(routes) == 0 {
		return fmt.Errorf("network: the host has no route to %s", ip)
	}
	if idx := routes[0].LinkIndex; idx != br.Attrs().Index {
		name := fmt.Sprintf("interface %d", idx)
		if l, err := netlink.LinkByIndex(idx); err == nil {
			name = l.Attrs().Name
		}
		return fmt.Errorf("network: route to %s goes to %s, not %s: another interface holds this subnet, so the container's traffic would be lost", ip, name, BridgeName)
	}
	return nil
}

// CheckRoute is checkRoute for a running container's address (devbox
// doctor).
func CheckRoute(ip string) error {
	addr := net.ParseIP(ip)
	if addr == nil {
		return fmt.Errorf("network: %q is not an address", ip)
	}
	return checkRoute(addr)
}
