package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	container "github.com/devbox/devbox/runtime"
)

// TestKilledRunReclaimedByPs: a `devbox run` on the bridge killed with
// SIGKILL left its address file (and with it the bridge and nftables
// table, which go with the last address) until the next `devbox run`;
// now any command that reconciles, here `devbox ps`, reclaims them. It
// runs in a network namespace of its own, where no other devbox sweeps
// the dead run's address before ps can.
func TestKilledRunReclaimedByPs(t *testing.T) {
	rs := newRunSpace(t, "[network]\nmode = \"bridge\"\n")
	ns := testNetns(t)
	var st syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+ns, &st); err != nil {
		t.Fatal(err)
	}
	alloc := fmt.Sprintf("/run/devbox/net-%d", st.Ino)
	t.Cleanup(func() { os.RemoveAll(alloc) })
	in := []string{"ip", "netns", "exec", ns}
	// ip netns exec execs devbox: the pid is devbox's.
	cmd := exec.Command(in[0], append(in[1:], devboxBin, "--root", rs.root, "run", "--", "sleep", "100")...)
	cmd.Dir = rs.dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ipFile, initPid := waitOwnAddress(t, alloc, cmd.Process.Pid)
	ip := strings.TrimPrefix(filepath.Base(ipFile), "ip-")
	link := func(name string) bool { return exec.Command("ip", "-n", ns, "link", "show", name).Run() == nil }
	if !link(container.VethName(ip)) {
		t.Fatalf("the run's veth %s is not there", container.VethName(ip))
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	// The init has a parent-death signal: it dies with devbox.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat("/proc/" + strconv.Itoa(initPid)); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the init %d outlived its killed devbox by 10 s", initPid)
		}
	}
	if _, err := os.Stat(ipFile); err != nil {
		t.Fatalf("the address file went before any command ran: %v", err)
	}
	if r := devboxIn(t, in, rs.dir, "--root", rs.root, "ps"); r.code != 0 {
		t.Fatalf("ps: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(ipFile); err == nil {
		t.Errorf("devbox ps left the killed run's address file %s", ipFile)
	}
	if runs, _ := os.ReadDir(filepath.Join(rs.root, "run")); len(runs) != 0 {
		for _, r := range runs {
			if data, err := os.ReadFile(filepath.Join(rs.root, "run", r.Name(), "owner")); err == nil && strings.Contains(string(data), `"`+strconv.Itoa(cmd.Process.Pid)+" ") {
				t.Errorf("devbox ps left the killed run's directory %s", r.Name())
			}
		}
	}
	if link(container.VethName(ip)) {
		t.Errorf("the killed run's veth %s is still there", container.VethName(ip))
	}
	// It was the namespace's last container: the bridge and table go too.
	if out, err := exec.Command(in[0], append(in[1:], "nft", "list", "table", "ip", "devbox")...).CombinedOutput(); err == nil {
		t.Errorf("no container is left, but the nftables table is:\n%s", out)
	}
	if link(container.BridgeName) {
		t.Errorf("no container is left, but the bridge %s is", container.BridgeName)
	}
}

// waitOwnAddress waits for the address file of the run whose devbox is
// pid (the one whose init is pid's child) and returns it and the init.
func waitOwnAddress(t *testing.T, alloc string, pid int) (string, int) {
	t.Helper()
	for deadline := time.Now().Add(120 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		files, _ := filepath.Glob(filepath.Join(alloc, "ip-*"))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			fields := strings.Fields(string(data)) // ID PID START
			if len(fields) < 2 {
				continue
			}
			p := fields[1]
			init, err := strconv.Atoi(p)
			if err != nil {
				continue
			}
			if stat, err := os.ReadFile("/proc/" + p + "/stat"); err == nil && parentOf(string(stat)) == pid {
				return f, init
			}
		}
	}
	t.Fatal("the run got no address on the bridge in 120 s")
	return "", 0
}

// parentOf is the ppid in a /proc/PID/stat line.
func parentOf(stat string) int {
	_, rest, _ := strings.Cut(stat, ") ")
	f := strings.Fields(rest)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}
