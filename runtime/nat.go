package runtime

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"

	"github.com/vishvananda/netlink"
)

// NAT and forwarding: nftables table "devbox" holds two base chains, a
// masquerade for traffic leaving the bridge's subnet and a forward accept,
// and every container has rules of its own there, added when it is
// plugged in and deleted when it ends (each tagged with a comment naming
// its address), so that one container's end never touches another's
// rules, whichever state root started it. The table goes with the bridge,
// when the last container of the namespace ends. Only nft is needed; where
// the host also has iptables with a FORWARD chain (Docker's DROP policy),
// the bridge's accepts go there too (see allowForward).

// ensureTable makes devbox's table and its base chains if they are not
// there ("add" of an existing table or chain is no error).
func ensureTable() error {
	return nft(fmt.Sprintf(`add table ip %[1]s
add chain ip %[1]s postrouting { type nat hook postrouting priority srcnat; policy accept; }
add chain ip %[1]s forward { type filter hook forward priority filter; policy accept; }
`, nftTable))
}

// forwardDrops names the forward chains of other tables whose policy
// drops, which an accept in devbox's own table cannot outvote (a packet
// must pass every base chain on its hook): firewalld's or a hand-written
// nftables.conf's. The FORWARD chain that iptables' allowForward takes
// care of is not among them.
func forwardDrops() []string {
	out, err := exec.Command("nft", "list", "chains").Output()
	if err != nil {
		return nil
	}
	_, iptErr := exec.LookPath("iptables")
	var drops []string
	table := ""
	chain := ""
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "table":
			table = f[1] + " " + f[2]
		case len(f) >= 2 && f[0] == "chain":
			chain = f[1]
		case strings.Contains(line, "hook forward") && strings.Contains(line, "policy drop"):
			if table == "ip "+nftTable || table == "ip filter" && chain == "FORWARD" && iptErr == nil {
				continue
			}
			drops = append(drops, fmt.Sprintf("table %s chain %s", table, chain))
		}
	}
	return drops
}

// firewallWarning says which forward chains may drop the bridge's
// traffic, or is empty.
func firewallWarning() string {
	drops := forwardDrops()
	if len(drops) == 0 {
		return ""
	}
	return fmt.Sprintf("network: %s drop forwarded packets by default, which devbox's own accepts cannot outvote: accept what comes from and goes to %s there", strings.Join(drops, ", "), BridgeName)
}

// ruleTag is the comment that marks a container's rules.
func ruleTag(ip net.IP) string { return "devbox " + ip.String() }

// addRules gives the container at ip its masquerade and forward rules.
func addRules(ip net.IP) error {
	return nft(fmt.Sprintf(`add rule ip %[1]s postrouting ip saddr %[2]s oifname != "%[3]s" masquerade comment "%[4]s"
add rule ip %[1]s forward iifname "%[3]s" ip saddr %[2]s accept comment "%[4]s"
add rule ip %[1]s forward oifname "%[3]s" ip daddr %[2]s ct state established,related accept comment "%[4]s"
`, nftTable, ip, BridgeName, ruleTag(ip)))
}

// ruleHandle matches a rule of `nft -a list table`: its comment and
// handle.
var ruleHandle = regexp.MustCompile(`comment "([^"]*)" # handle (\d+)`)

// removeRules deletes the rules of the containers at ips, and their
// groups' (leaveGroups).
func removeRules(ips []net.IP) {
	leaveGroups(ips)
	out, err := exec.Command("nft", "-a", "list", "table", "ip", nftTable).Output()
	if err != nil {
		return
	}
	tags := map[string]bool{}
	for _, ip := range ips {
		tags[ruleTag(ip)] = true
	}
	var del strings.Builder
	chain := ""
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "chain" {
			chain = f[1]
		}
		if m := ruleHandle.FindStringSubmatch(line); m != nil && tags[m[1]] {
			fmt.Fprintf(&del, "delete rule ip %s %s handle %s\n", nftTable, chain, m[2])
		}
	}
	if del.Len() > 0 {
		nft(del.String())
	}
}

// nft runs an nft script.
func nft(script string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return errors.New("network: nft not found (apt-get install nftables), or use [network] mode = \"none\" or \"host\"")
		}
		return fmt.Errorf("network: nftables: %v: %s", err, out)
	}
	return nil
}

// teardownBridge removes the bridge's table and forward rules, and the
// bridge last: they are made after it, so a devbox killed half-way
// through leaves the bridge, and the next sweep that finds it unused
// (releaseAddr) removes the rest.
func teardownBridge() {
	exec.Command("nft", "delete", "table", "ip", nftTable).Run()
	exec.Command("nft", "delete", "table", "bridge", nftTable).Run()
	removeForwardRules()
	if br, err := netlink.LinkByName(BridgeName); err == nil {
		netlink.LinkDel(br)
	}
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
