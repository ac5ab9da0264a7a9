package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/testbase"
	"github.com/devbox/devbox/internal/testenv"
)

// testNetns makes a network namespace of the test's own, removed after it.
func testNetns(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "dbxe2e-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	exec.Command("ip", "-n", name, "link", "set", "lo", "up").Run()
	return name
}

// callerNamespaces are the ways the tests start devbox from a namespace
// other than the host's: a command prefix each.
func callerNamespaces(t *testing.T) map[string][]string {
	return map[string][]string{
		"ip-netns-exec": {"ip", "netns", "exec", testNetns(t)},
		"unshare-m":     {"unshare", "-m"},
	}
}

// TestRunFromOtherNamespaces: `devbox run` works, limits included, when
// started from another mount namespace, or from `ip netns exec`, which
// also mounts a sysfs of its own over /sys (hiding /sys/fs/cgroup).
func TestRunFromOtherNamespaces(t *testing.T) {
	rs := newRunSpace(t, "[resources]\nmemory = \"64MiB\"\npids = 64\n")
	for name, wrap := range callerNamespaces(t) {
		t.Run(name, func(t *testing.T) {
			r := devboxIn(t, wrap, rs.dir, "--root", rs.root, "run", "--", "/bin/sh", "-c", "echo ran-$(hostname)")
			if r.code != 0 || !strings.Contains(r.stdout, "ran-boxtest") {
				t.Errorf("run under %v: exit %d: %q %s", wrap, r.code, r.stdout, r.stderr)
			}
		})
	}
}

// TestUpFromOtherNamespaces: up, exec, ssh and down from another
// namespace, leaving nothing behind.
func TestUpFromOtherNamespaces(t *testing.T) {
	testenv.NeedRoot(t)
	testbase.Debian(t)
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no OpenSSH client (apt-get install openssh-client)")
	}
	for name, wrap := range callerNamespaces(t) {
		t.Run(name, func(t *testing.T) {
			noLeftovers := leftoverCheck(filepath.Join(testenv.CacheDir(), "store"))
			e := &sshEnv{name: "ns-" + name, dir: t.TempDir(), root: filepath.Join(testenv.CacheDir(), "store"), port: freePort(t), user: "root"}
			var pub string
			e.key, pub = writeKeyPair(t, e.dir)
			spec := fmt.Sprintf("name = %q\nbase = %q\n[ssh]\nport = %d\nauthorized_keys = [%q]\n[network]\nmode = \"none\"\n",
				e.name, testbase.DebianRef, e.port, pub)
			os.WriteFile(filepath.Join(e.dir, "devbox.toml"), []byte(spec), 0o644)
			t.Cleanup(func() { devbox(t, e.dir, "--root", e.root, "rm", e.name) })
			if r := devboxIn(t, wrap, e.dir, "--root", e.root, "up"); r.code != 0 {
				t.Fatalf("up under %v: %d %s%s", wrap, r.code, r.stdout, r.stderr)
			}
			if r := devboxIn(t, wrap, e.dir, "--root", e.root, "exec", e.name, "--", "sh", "-c", "echo exec-ok"); !strings.Contains(r.stdout, "exec-ok") {
				t.Errorf("exec: %d %q %s", r.code, r.stdout, r.stderr)
			}
			// The published port lives in the caller's network namespace.
			ssh := append(append(wrap[:len(wrap):len(wrap)], "ssh"), e.sshOpts()...)
			ssh = append(ssh, "-p", strconv.Itoa(e.port), e.target(), "echo ssh-ok")
			if r := runCmd(t, "", exec.Command(ssh[0], ssh[1:]...)); !strings.Contains(r.stdout, "ssh-ok") {
				t.Errorf("ssh: %d %q %s", r.code, r.stdout, r.stderr)
			}
			if r := devboxIn(t, wrap, e.dir, "--root", e.root, "down"); r.code != 0 {
				t.Errorf("down: %s", r.stderr)
			}
			noLeftovers(t)
		})
	}
}

// TestCgroupInside: on cgroup v2 the container sees its own cgroup, with
// its limits, read-only, as the root of its cgroup namespace.
func TestCgroupInside(t *testing.T) {
	if !hostCgroup2() {
		t.Skip("host has cgroup v1/hybrid: the container's /sys/fs/cgroup view is a cgroup v2 feature here")
	}
	rs := newRunSpace(t, "[resources]\nmemory = \"64MiB\"\npids = 77\ncpus = 0.5\n")
	r := rs.sh(t, "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max; "+
		"echo 1 > /sys/fs/cgroup/pids.max && echo WRITABLE")
	for _, want := range []string{"0::/\n", "67108864\n", "77\n", "50000 100000\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inside: want %q in %q (%s)", want, r.stdout, r.stderr)
		}
	}
	if strings.Contains(r.stdout, "WRITABLE") || !strings.Contains(r.stderr, "Read-only") {
		t.Errorf("/sys/fs/cgroup is writable inside: %q %q", r.stdout, r.stderr)
	}
}

func hostCgroup2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// TestRunKilledReclaimsCgroup: a `devbox run` killed with SIGKILL cannot
// remove its container's cgroup; the next command does.
func TestRunKilledReclaimsCgroup(t *testing.T) {
	rs := newRunSpace(t, "[resources]\npids = 50\n")
	before := devboxCgroups()
	cmd := exec.Command(devboxBin, "--root", rs.root, "run", "--", "sleep", "60")
	cmd.Dir = rs.dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var made []string
	for deadline := time.Now().Add(20 * time.Second); len(made) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		made = newOnly(devboxCgroups(), before)
	}
	if len(made) == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("no container cgroup appeared")
	}
	time.Sleep(300 * time.Millisecond) // let the container start in it
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	time.Sleep(2500 * time.Millisecond) // past the age a cgroup being filled may have
	if r := rs.run(t, "/bin/true"); r.code != 0 {
		t.Fatalf("next run: %d %s", r.code, r.stderr)
	}
	for _, d := range made {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left after the next command", d)
		}
	}
}

// devboxCgroups lists the container cgroups on this host (not the leaf
// that devbox moves its caller's processes into on cgroup v2).
func devboxCgroups() []string {
	var all []string
	pat := "/sys/fs/cgroup"
	for depth := 0; depth < 6; depth++ {
		pat += "/*"
		m, _ := filepath.Glob(pat[:len(pat)-1] + "devbox-*")
		for _, d := range m {
			if filepath.Base(d) != "devbox-leaf" {
				all = append(all, d)
			}
		}
	}
	return all
}

func newOnly(now, before []string) []string {
	var out []string
	for _, d := range now {
		found := false
		for _, b := range before {
			found = found || b == d
		}
		if !found {
			out = append(out, d)
		}
	}
	return out
}

// TestFirewallForwardDrop: a bridge container reaches the outside when
// the filter FORWARD policy is DROP (Docker's, ufw's, firewalld's), and
// devbox's accepts are gone with the last container. Hermetic: devbox runs
// in a network namespace of the test's, whose "outside" is a peer in a
// second test namespace on a veth; no other address is ever a target.
func TestFirewallForwardDrop(t *testing.T) {
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("no iptables command (apt-get install iptables): no FORWARD policy to coexist with")
	}
	rs := newRunSpace(t, "[network]\nmode = \"bridge\"\n")
	host, outside := testNetns(t), testNetns(t)
	sh := func(script string) {
		t.Helper()
		if out, err := exec.Command("sh", "-ec", script).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", script, err, out)
		}
	}
	sh(fmt.Sprintf(`ip -n %[1]s link add dbxfw0 type veth peer name dbxfw1 netns %[2]s
		ip -n %[1]s addr add 192.0.2.1/24 dev dbxfw0; ip -n %[1]s link set dbxfw0 up
		ip -n %[2]s addr add 192.0.2.2/24 dev dbxfw1; ip -n %[2]s link set dbxfw1 up
		ip netns exec %[1]s iptables -w -P FORWARD DROP`, host, outside))
	srv := exec.Command("ip", "netns", "exec", outside, helperBin, "http", "8080")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	// Dropped SYNs would retry for minutes: timeout bounds the attempt.
	script := `timeout 15 bash -c 'for i in 1 2 3 4 5 6 7 8 9 10; do exec 3<>/dev/tcp/192.0.2.2/8080 && break; sleep 0.2; done
		printf "GET / HTTP/1.0\r\n\r\n" >&3; cat <&3'`
	wrap := []string{"ip", "netns", "exec", host}
	r := devboxIn(t, wrap, rs.dir, "--root", rs.root, "run", "--", "bash", "-c", script)
	if r.code != 0 || !strings.Contains(r.stdout, "hello from the container") {
		t.Errorf("outside access under FORWARD DROP: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	out, _ := exec.Command("ip", "netns", "exec", host, "iptables", "-w", "-S", "FORWARD").CombinedOutput()
	if strings.Contains(string(out), "devbox") {
		t.Errorf("devbox's FORWARD rules left after the last container:\n%s", out)
	}
}
