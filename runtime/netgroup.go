package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
)

// Network groups: the containers of one group (an environment and its
// services) reach each other on the bridge, and no other container
// reaches them. A bridge passes frames between its ports without the ip
// family's hooks, so the rule is in nftables' bridge family: table
// "devbox" there has a forward chain and one set per group, of its
// members' bridge ports (the host ends of their veths); each member has a
// rule, tagged as its other rules are, that drops every frame that comes
// to its port from a port outside its set. Ports, not addresses: a
// container may forge a source address (it keeps CAP_NET_RAW), and IPv6
// and ARP carry none of the ip family's. The host itself (through the
// bridge's address: routed, not bridged) still reaches every container,
// as the published ports need.

// groupSet is the name of group's set: a digest, since a group's name
// (a state root and an environment) is longer than nft allows.
func groupSet(group string) string {
	sum := sha256.Sum256([]byte(group))
	return "g" + hex.EncodeToString(sum[:8])
}

// joinGroup makes the container at ip a member of group.
func joinGroup(group string, ip net.IP) error {
	port, _ := vethNames(ip)
	return nft(fmt.Sprintf(`add table bridge %[1]s
add chain bridge %[1]s forward { type filter hook forward priority filter; policy accept; }
add set bridge %[1]s %[2]s { type ifname; }
add element bridge %[1]s %[2]s { "%[3]s" }
add rule bridge %[1]s forward oifname "%[3]s" iifname != @%[2]s drop comment "%[4]s"
`, nftTable, groupSet(group), port, ruleTag(ip)))
}

// leaveGroups takes the containers at ips out of every group: their drop
// rules and their ports in the sets (an empty set stays until the
// table goes, with the bridge). It is run for every address given up or
// found stale, so that an address (and the port named after it) never
// carries a dead container's membership to the next one.
func leaveGroups(ips []net.IP) {
	out, err := exec.Command("nft", "-j", "-a", "list", "table", "bridge", nftTable).Output()
	if err != nil {
		return // no group was ever made
	}
	var table struct {
		Nftables []struct {
			Set *struct {
				Name string            `json:"name"`
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
			Rule *struct {
				Chain   string `json:"chain"`
				Handle  int    `json:"handle"`
				Comment string `json:"comment"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &table); err != nil {
		return
	}
	gone, tags := map[string]bool{}, map[string]bool{}
	for _, ip := range ips {
		port, _ := vethNames(ip)
		gone[port] = true
		tags[ruleTag(ip)] = true
	}
	var del strings.Builder
	for _, o := range table.Nftables {
		if r := o.Rule; r != nil && tags[r.Comment] {
			fmt.Fprintf(&del, "delete rule bridge %s %s handle %d\n", nftTable, r.Chain, r.Handle)
		}
		if o.Set == nil {
			continue
		}
		for _, raw := range o.Set.Elem {
			var e string
			if json.Unmarshal(raw, &e) == nil && gone[e] {
				fmt.Fprintf(&del, "delete element bridge %s %s { \"%s\" }\n", nftTable, o.Set.Name, e)
			}
		}
	}
	if del.Len() > 0 {
		nft(del.String())
	}
}
