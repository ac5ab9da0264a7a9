package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/testenv"

	"github.com/creack/pty"

	"github.com/devbox/devbox/internal/testbase"
)

// runSpace is a spec directory over the cached Debian base, with the test
// helper mounted at /helper.
type runSpace struct {
	dir, root string
}

func newRunSpace(t *testing.T, extra string) *runSpace {
	t.Helper()
	return newRunSpaceIn(t, t.TempDir(), extra)
}

// newRunSpaceIn is newRunSpace with the spec, and so the project tree,
// in dir.
func newRunSpaceIn(t *testing.T, dir, extra string) *runSpace {
	t.Helper()
	testenv.NeedRoot(t)
	testbase.Debian(t)
	spec := fmt.Sprintf(`base = %q
hostname = "boxtest"
%s

[[mounts]]
source = %q
target = "/helper"
readonly = true
`, testbase.DebianRef, extra, helperBin)
	if !strings.Contains(extra, "[network]") {
		spec += "\n[network]\nmode = \"none\"\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := &runSpace{dir: dir, root: filepath.Join(testenv.CacheDir(), "store")}
	check := leftoverCheck(rs.root)
	t.Cleanup(func() { check(t) })
	return rs
}

func (rs *runSpace) run(t *testing.T, args ...string) result {
	t.Helper()
	return devbox(t, rs.dir, append([]string{"--root", rs.root, "run", "--"}, args...)...)
}

// sh runs a shell script in a one-shot container.
func (rs *runSpace) sh(t *testing.T, script string) result {
	t.Helper()
	return rs.run(t, "/bin/sh", "-c", script)
}

// hostResources are devbox's resources on the host that a test could
// leave behind, by name: mounts under the state root's run/, interfaces,
// the nftables table, iptables rules, cgroups and one-shot directories.
func hostResources(root string) map[string]bool {
	res := map[string]bool{}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, filepath.Join(root, "run")) {
			res["mount: "+l] = true
		}
	}
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "dbx") || i.Name == "devbox0" {
			res["interface "+i.Name] = true
		}
	}
	if exec.Command("nft", "list", "table", "ip", "devbox").Run() == nil {
		res["nftables table ip devbox"] = true
	}
	if out, err := exec.Command("iptables", "-w", "-S", "FORWARD").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "devbox") {
				res["iptables "+l] = true
			}
		}
	}
	for _, cg := range devboxCgroups() {
		res["cgroup "+cg] = true
	}
	runs, _ := os.ReadDir(filepath.Join(root, "run"))
	for _, r := range runs {
		res["run dir "+r.Name()] = true
	}
	return res
}

// leftoverCheck snapshots devbox's host resources; its check, once the
// test's containers have ended, fails the test for each resource that was
// not there at the snapshot. Only what the test made counts: an
// environment the developer runs meanwhile (make up) keeps its bridge.
func leftoverCheck(root string) func(t *testing.T) {
	before := hostResources(root)
	return func(t *testing.T) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			var left []string
			for r := range hostResources(root) {
				if !before[r] {
					left = append(left, r)
				}
			}
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				sort.Strings(left)
				t.Errorf("left behind after the container ended:\n%s", strings.Join(left, "\n"))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestRunIsolation(t *testing.T) {
	rs := newRunSpace(t, "")
	ro := t.TempDir()
	os.WriteFile(filepath.Join(ro, "f"), []byte("host"), 0o644)
	spec, _ := os.ReadFile(filepath.Join(rs.dir, "devbox.toml"))
	spec = append(spec, []byte(fmt.Sprintf("\n[[mounts]]\nsource = %q\ntarget = \"/ro\"\nreadonly = true\n", ro))...)
	os.WriteFile(filepath.Join(rs.dir, "devbox.toml"), spec, 0o644)

	script := fmt.Sprintf(`
echo "procs=$(ls -d /proc/[0-9]* | wc -l)"
kill -0 %d 2>/dev/null && echo "host-pid=visible" || echo "host-pid=hidden"
echo "hostname=$(hostname)"
(echo b > /proc/sysrq-trigger) 2>/dev/null && echo "sysrq=writable" || echo "sysrq=refused"
# Masked: absent on kernels without it, else empty.
for f in kcore keys timer_list sched_debug; do [ -e /proc/$f ] && echo "$f=$(wc -c < /proc/$f)" || echo "$f=0"; done
[ -e /proc/keys ] && echo "keys-present=yes"
(echo x > /ro/f) 2>/dev/null && echo "ro=writable" || echo "ro=refused"
(echo x >> /proc/1/exe) 2>/dev/null && echo "exe=writable" || echo "exe=refused"
echo hello > /written-by-container
mknod /dev/sda b 8 0 2>/dev/null; (head -c1 /dev/sda) 2>/dev/null && echo "blockdev=readable" || echo "blockdev=refused"
(mount -t tmpfs x /mnt) 2>/dev/null && echo "mount=allowed" || echo "mount=refused"
echo "ptmx=$(readlink /dev/ptmx)"
echo "pwd=$(pwd)"
`, os.Getpid())
	r := rs.sh(t, script)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		k, v, _ := strings.Cut(l, "=")
		got[k] = v
	}
	want := map[string]string{
		"host-pid": "hidden", "hostname": "boxtest", "sysrq": "refused", "kcore": "0", "keys": "0", "timer_list": "0", "sched_debug": "0", "keys-present": "yes",
		"ro": "refused", "exe": "refused", "mount": "refused", "ptmx": "pts/ptmx", "pwd": "/",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	var procs int
	fmt.Sscan(got["procs"], &procs)
	if procs < 2 || procs > 6 {
		t.Errorf("the container sees %d processes, want a handful", procs)
	}
	if got["blockdev"] == "readable" {
		t.Error("the container could read a block device it made")
	}
	if data, _ := os.ReadFile(filepath.Join(ro, "f")); string(data) != "host" {
		t.Errorf("read-only mount was written: %q", data)
	}
	// The write went to a throw-away layer: not to the host, not to the image.
	if out, _ := exec.Command("find", rs.root, "/", "-xdev", "-maxdepth", "1", "-name", "written-by-container").Output(); len(out) > 0 {
		t.Errorf("a write in the container reached the host: %s", out)
	}
}

func TestRunExitCodesAndSignals(t *testing.T) {
	rs := newRunSpace(t, "")
	if r := rs.sh(t, "exit 42"); r.code != 42 {
		t.Errorf("exit 42 -> %d", r.code)
	}
	if r := rs.sh(t, "kill -TERM $$"); r.code != 143 {
		t.Errorf("killed by SIGTERM -> %d, want 143", r.code)
	}
	if r := rs.run(t, "no-such-command"); r.code != 127 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("missing command -> %d %q", r.code, r.stderr)
	}
	if r := rs.sh(t, "cat"); r.code != 0 {
		t.Errorf("stdin EOF: exit %d", r.code)
	}
	// stdin reaches the command.
	cmd := exec.Command(devboxBin, "--root", rs.root, "run", "--", "/bin/sh", "-c", "read x; echo got-$x")
	cmd.Dir = rs.dir
	cmd.Stdin = strings.NewReader("abc\n")
	if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != "got-abc" {
		t.Errorf("stdin: %q %v", out, err)
	}
	// SIGTERM to devbox reaches the command, which can handle it.
	cmd = exec.Command(devboxBin, "--root", rs.root, "run", "--", "/bin/sh", "-c", `trap 'echo caught; exit 7' TERM; echo ready; while :; do sleep 0.05; done`)
	cmd.Dir = rs.dir
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(stdout)
	if l, _ := br.ReadString('\n'); l != "ready\n" {
		t.Fatalf("no ready line: %q", l)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	watchdog := time.AfterFunc(15*time.Second, func() { cmd.Process.Kill() }) // a lost signal fails, not hangs
	defer watchdog.Stop()
	rest, _ := io.ReadAll(br)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 || !strings.Contains(string(rest), "caught") {
		t.Errorf("SIGTERM: %v, output %q", err, rest)
	}
}

func TestRunReapsOrphans(t *testing.T) {
	rs := newRunSpace(t, "")
	// 100 orphans: each subshell exits at once, leaving its sleep to init.
	r := rs.sh(t, `for i in $(seq 100); do (sleep 0.2 &); done; sleep 1
z=0; for f in /proc/[0-9]*/stat; do s=$(cut -d' ' -f3 "$f" 2>/dev/null); [ "$s" = Z ] && z=$((z+1)); done
echo "zombies=$z procs=$(ls -d /proc/[0-9]* | wc -l)"`)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "zombies=0 ") {
		t.Errorf("orphans not reaped: %s", r.stdout)
	}
}

func TestRunLimits(t *testing.T) {
	rs := newRunSpace(t, "[resources]\nmemory = \"48MiB\"\npids = 40\ncpus = 1\n")
	r := rs.run(t, "/helper", "alloc", "200")
	if r.code != 137 {
		t.Errorf("allocating 200 MB under a 48 MiB limit: exit %d (want 137, OOM-killed): %s", r.code, r.stdout)
	}
	if r := rs.run(t, "/helper", "alloc", "16"); r.code != 0 {
		t.Errorf("allocating 16 MB under a 48 MiB limit failed: %d %s", r.code, r.stderr)
	}
	r = rs.run(t, "/helper", "spawn", "100")
	var started int
	fmt.Sscanf(r.stdout, "started %d", &started)
	if started == 0 || started >= 40 || !strings.Contains(r.stdout, "resource temporarily unavailable") {
		t.Errorf("fork bomb under pids=40: %q (exit %d)", r.stdout, r.code)
	}
}

func TestRunNetworks(t *testing.T) {
	// none: loopback only, no route out.
	rs := newRunSpace(t, "")
	r := rs.run(t, "/helper", "addrs")
	if len(containerAddrs(r.stdout)) != 0 || !strings.Contains(r.stdout, "127.0.0.1") {
		t.Errorf("none: addresses %q", r.stdout)
	}
	if r := rs.sh(t, "wc -l < /proc/net/route"); strings.TrimSpace(r.stdout) != "1" {
		t.Errorf("none: routes %q", r.stdout)
	}

	// bridge: reaches a server on the host's bridge address (the VM of
	// make test-v2vm has no other); two containers get different
	// addresses.
	_, port, _ := net.SplitHostPort(greeter(t, "0.0.0.0:0", "hello container\n"))
	br := newRunSpace(t, "[network]\nmode = \"bridge\"\n")
	var wg sync.WaitGroup
	outs := make([]result, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each holds its address a while, so that the two overlap.
			outs[i] = br.sh(t, fmt.Sprintf("/helper addrs; /helper dial-gateway %s; sleep 2", port))
		}()
	}
	wg.Wait()
	var ips []string
	for i, o := range outs {
		if o.code != 0 || !strings.Contains(o.stdout, "hello container") {
			t.Errorf("bridge %d: exit %d %q %s", i, o.code, o.stdout, o.stderr)
		}
		ips = append(ips, containerAddrs(o.stdout)...)
	}
	if len(ips) != 2 || ips[0] == ips[1] {
		t.Errorf("two containers' addresses: %v", ips)
	}

	// host: sees the host's interfaces.
	hs := newRunSpace(t, "[network]\nmode = \"host\"\n")
	r = hs.run(t, "ls", "/sys/class/net")
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if !strings.Contains(r.stdout, i.Name) {
			t.Errorf("host: %s missing from %q %s", i.Name, r.stdout, r.stderr)
		}
	}
}

func TestRunPublishedPortRelay(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	rs := newRunSpace(t, fmt.Sprintf("ports = [\"%d:7\"]\n", port))
	cmd := exec.Command(devboxBin, "--root", rs.root, "run", "--", "/helper", "echo-server", "7")
	cmd.Dir = rs.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// The port is bound before the container starts; wait for the server.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Write([]byte("x"))
			c.(*net.TCPConn).CloseWrite()
			b, _ := io.ReadAll(c)
			c.Close()
			if string(b) == "x" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("echo server never answered: %s", stderr.String())
		}
	}
	// Only on 127.0.0.1.
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", hostIP(t), port), time.Second); err == nil {
		c.Close()
		t.Errorf("published port answers on a non-loopback address")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, 32<<10)
			rand.Read(payload)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			go func() {
				c.Write(payload)
				c.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, payload) {
				errs <- fmt.Errorf("echo: %d of %d bytes, %v", len(got), len(payload), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// containerAddrs are the IPv4 addresses but loopback in the lines of
// `helper addrs`.
func containerAddrs(out string) []string {
	var ips []string
	for _, l := range strings.Split(out, "\n") {
		addr, _, _ := strings.Cut(strings.TrimSpace(l), "/")
		if ip := net.ParseIP(addr); ip != nil && ip.To4() != nil && !ip.IsLoopback() {
			ips = append(ips, ip.String())
		}
	}
	return ips
}

// hostIP is a non-loopback address of this host.
func hostIP(t *testing.T) string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	t.Skip("no non-loopback address")
	return ""
}

func TestRunPortInUse(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	rs := newRunSpace(t, fmt.Sprintf("ports = [\"%d:80\"]\n", port))
	r := rs.run(t, "/bin/true")
	if r.code != 1 || !strings.Contains(r.stderr, "address already in use") {
		t.Errorf("port in use: exit %d %q", r.code, r.stderr)
	}
}

func TestRunTTY(t *testing.T) {
	rs := newRunSpace(t, "")
	cmd := exec.Command(devboxBin, "--root", rs.root, "run", "-t", "--", "/bin/sh", "-c", "tty; stty size; echo TERM=$TERM; exit 5")
	cmd.Dir = rs.dir
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 33, Cols: 101})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	watchdog := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() }) // fail, never hang
	defer watchdog.Stop()
	out, _ := io.ReadAll(ptmx)
	err = cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 5 {
		t.Errorf("exit: %v", err)
	}
	s := string(out)
	for _, want := range []string{"/dev/pts/0", "33 101", "TERM=xterm-256color"} {
		if !strings.Contains(s, want) {
			t.Errorf("tty output %q lacks %q", s, want)
		}
	}
}
