package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/proc"
	"github.com/devbox/devbox/internal/testbase"
	"github.com/devbox/devbox/internal/testenv"
)

// bridgeSpec writes a spec in a new directory: the Debian base, bridge
// networking, the test helper at /helper.
func bridgeSpec(t *testing.T, name string, sshPort int) string {
	t.Helper()
	dir := t.TempDir()
	spec := fmt.Sprintf(`name = %q
base = %q
[ssh]
port = %d
[network]
mode = "bridge"
[[mounts]]
source = %q
target = "/helper"
readonly = true
`, name, testbase.DebianRef, sshPort, helperBin)
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644)
	return dir
}

// TestWhileAnotherEnvironmentRuns is `make up` then `make test`: with an
// environment of another state root up on the bridge, a test's own bridge
// containers work, get their own addresses, and leave nothing of theirs;
// the bridge goes with the last container of either root.
func TestWhileAnotherEnvironmentRuns(t *testing.T) {
	testenv.NeedRoot(t)
	hadBridge := bridgeExists()
	otherRoot := baseRoot(t)
	other := bridgeSpec(t, "bystander", freePort(t))
	if r := devbox(t, other, "--root", otherRoot, "up"); r.code != 0 {
		t.Fatalf("up of the other environment: %s", r.stderr)
	}
	defer devbox(t, other, "--root", otherRoot, "rm", "bystander")
	var otherIP string
	if r := devbox(t, other, "--root", otherRoot, "ps", "--json"); r.code == 0 {
		if i := strings.Index(r.stdout, `"ip": "`); i >= 0 {
			otherIP = strings.SplitN(r.stdout[i+7:], `"`, 2)[0]
		}
	}

	rs := newRunSpace(t, "[network]\nmode = \"bridge\"\n") // checks its own leftovers
	r := rs.run(t, "/helper", "addrs")
	if r.code != 0 {
		t.Fatalf("run beside another environment: %d %s", r.code, r.stderr)
	}
	if otherIP == "" || strings.Contains(r.stdout, otherIP+"/") {
		t.Errorf("the run's addresses %q, the other environment's %q: one allocation must serve both roots", r.stdout, otherIP)
	}
	if !bridgeExists() {
		t.Error("the bridge went while another root's environment uses it")
	}
	if r := devbox(t, other, "--root", otherRoot, "rm", "bystander"); r.code != 0 {
		t.Fatalf("rm: %s", r.stderr)
	}
	if !hadBridge && bridgeExists() {
		t.Error("the bridge stayed after the last container of both roots ended")
	}
}

func bridgeExists() bool {
	_, err := net.InterfaceByName("devbox0")
	return err == nil
}

// TestBuildStepIsolatedFromHostLoopback: a [[run]] step of a cloned
// repository cannot reach services on the host's loopback; builds have
// their own network namespace (outbound NAT is what the classic
// environment's apt step uses).
func TestBuildStepIsolatedFromHostLoopback(t *testing.T) {
	testenv.NeedRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reached := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			reached <- struct{}{}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	root := baseRoot(t)
	dir := t.TempDir()
	spec := fmt.Sprintf("name = \"buildnet\"\nbase = %q\n[[run]]\ncommand = \"if bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d' 2>/dev/null; then echo REACHED; exit 1; fi\"\n", testbase.DebianRef, port)
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644)
	r := devbox(t, dir, "--root", root, "build")
	select {
	case <-reached:
		t.Fatal("a build step reached a service on the host's loopback")
	default:
	}
	if r.code != 0 {
		t.Fatalf("build: %d %s", r.code, tail(r.stderr))
	}
}

// inits are the pids of running container inits.
func inits() map[int]bool {
	out := map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		if cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline"); strings.HasPrefix(string(cmd), "devbox-init\x00") {
			out[pid] = true
		}
	}
	return out
}

// killAfter starts devbox with args and SIGKILLs it after d (or lets it
// finish if it is faster).
func killAfter(t *testing.T, dir string, d time.Duration, args ...string) {
	t.Helper()
	cmd := exec.Command(devboxBin, args...)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}

// TestKilledCommandsRerun: SIGKILL of up, run, down or rm at any moment,
// then the same command again, ends consistent: no orphan init, no stale
// state, and nothing of the container left on the host.
func TestKilledCommandsRerun(t *testing.T) {
	testenv.NeedRoot(t)
	root := baseRoot(t)
	dir := bridgeSpec(t, "killme", freePort(t))
	check := leftoverCheck(root)
	initsBefore := inits()
	if r := devbox(t, dir, "--root", root, "build"); r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	for _, d := range []time.Duration{0, 3 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
		killAfter(t, dir, d, "--root", root, "up")
		if r := devbox(t, dir, "--root", root, "up"); r.code != 0 {
			t.Fatalf("up after an up killed at %s: %s", d, r.stderr)
		}
		killAfter(t, dir, d, "--root", root, "down")
		if r := devbox(t, dir, "--root", root, "down"); r.code != 0 || !strings.Contains(r.stdout, "stopped") {
			t.Fatalf("down after a down killed at %s: %s%s", d, r.stdout, r.stderr)
		}
		killAfter(t, dir, d, "--root", root, "run", "--", "sleep", "5")
		if r := devbox(t, dir, "--root", root, "run", "--", "true"); r.code != 0 {
			t.Fatalf("run after a run killed at %s: %s", d, r.stderr)
		}
		if r := devbox(t, dir, "--root", root, "up"); r.code != 0 {
			t.Fatalf("up: %s", r.stderr)
		}
		killAfter(t, dir, d, "--root", root, "rm", "killme")
		if r := devbox(t, dir, "--root", root, "rm", "killme"); r.code != 0 {
			if _, err := os.Stat(filepath.Join(root, "envs", "killme")); err == nil {
				t.Fatalf("rm after an rm killed at %s: %s", d, r.stderr)
			}
		}
		if r := devbox(t, dir, "--root", root, "ps"); strings.Contains(r.stdout, "running") {
			t.Fatalf("after killed commands at %s, ps shows: %s", d, r.stdout)
		}
	}
	for pid := range inits() {
		if !initsBefore[pid] {
			t.Errorf("orphan container init %d", pid)
		}
	}
	check(t)
}

// TestTeardownKilledHalfway: a devbox killed while it tore the bridge
// down has given up its address already; what it left of the bridge is
// removed by the next command that reclaims, not kept for ever.
func TestTeardownKilledHalfway(t *testing.T) {
	testenv.NeedRoot(t)
	if bridgeExists() {
		t.Fatal("another environment holds the bridge: its teardown cannot be seen (run with no environment up)")
	}
	root := baseRoot(t)
	dir := bridgeSpec(t, "halfway", freePort(t))
	check := leftoverCheck(root)
	if r := devbox(t, dir, "--root", root, "up"); r.code != 0 {
		t.Fatalf("up: %s", tail(r.stderr))
	}
	data, _ := os.ReadFile(filepath.Join(root, "envs", "halfway", "state.json"))
	var env struct {
		Pid       int
		Leftovers struct {
			IP       string `json:"ip"`
			AllocDir string `json:"alloc_dir"`
		} `json:"leftovers"`
	}
	if err := json.Unmarshal(data, &env); err != nil || env.Pid == 0 || env.Leftovers.IP == "" {
		t.Fatalf("state: %q %v", data, err)
	}
	// The state a teardown killed half-way leaves: the init dead, its
	// address file removed, the table gone, the bridge still there.
	syscall.Kill(env.Pid, syscall.SIGKILL)
	for i := 0; i < 100 && proc.Of(env.Pid).Alive(); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.Remove(filepath.Join(env.Leftovers.AllocDir, "ip-"+env.Leftovers.IP)); err != nil {
		t.Fatal(err)
	}
	exec.Command("nft", "delete", "table", "ip", "devbox").Run()
	if r := devbox(t, dir, "--root", root, "ps"); r.code != 0 || strings.Contains(r.stdout, "running") {
		t.Fatalf("ps: %d %s%s", r.code, r.stdout, r.stderr)
	}
	check(t)
}

// TestNoProcessOutlivesItsState: an environment whose state root is
// deleted under it stops by itself (its init watches its state), instead
// of running on with nothing left to stop it by but kill.
func TestNoProcessOutlivesItsState(t *testing.T) {
	testenv.NeedRoot(t)
	root := baseRoot(t)
	dir := t.TempDir()
	spec := fmt.Sprintf("name = \"orphan\"\nbase = %q\n[ssh]\nport = %d\n[network]\nmode = \"none\"\n", testbase.DebianRef, freePort(t))
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644)
	if r := devbox(t, dir, "--root", root, "up"); r.code != 0 {
		t.Fatalf("up: %d %s", r.code, tail(r.stderr))
	}
	r := devbox(t, dir, "--root", root, "ps", "--json")
	var envs []struct{ Pid int }
	if err := json.Unmarshal([]byte(r.stdout), &envs); err != nil || len(envs) != 1 || envs[0].Pid == 0 {
		t.Fatalf("ps --json: %q %v", r.stdout, err)
	}
	pid := envs[0].Pid
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the init %d runs on 15 s after its state root was deleted", pid)
		}
	}
}
