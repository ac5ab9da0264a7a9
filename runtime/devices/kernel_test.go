package devices

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// The kernel tests re-exec the test binary as a child with childEnv set; the
// child waits on stdin until the parent has moved it into the cgroup, tries
// the device operations and prints one "probe result" line for each.
const (
	childEnv  = "DEVBOX_DEVICES_TEST_CHILD" // "probe" or "attach"
	nodesEnv  = "DEVBOX_DEVICES_TEST_NODES" // dir with the parent's nodes (probe)
	cgroupEnv = "DEVBOX_DEVICES_TEST_CGROUP"
)

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "probe":
		var b [1]byte
		if _, err := os.Stdin.Read(b[:]); err != nil {
			fmt.Fprintln(os.Stderr, "child: wait for parent:", err)
			os.Exit(2)
		}
		probe(os.Getenv(nodesEnv))
		os.Exit(0)
	case "attach":
		// A short-lived "devbox up": attach and exit.
		start := time.Now()
		if err := AttachV2(os.Getenv(cgroupEnv), Default()); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		first := time.Since(start)
		start = time.Now()
		if err := AttachV2(os.Getenv(cgroupEnv), Default()); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("first", first.Nanoseconds(), "second", time.Since(start).Nanoseconds())
		os.Exit(0)
	}
	os.Exit(2)
}

// probe tries each operation and prints "name ok" or "name ERRNO".
func probe(nodes string) {
	report := func(name string, err error) {
		var errno unix.Errno
		switch {
		case err == nil:
			fmt.Println(name, "ok")
		case errors.As(err, &errno):
			fmt.Println(name, unix.ErrnoName(errno))
		default:
			fmt.Println(name, strings.ReplaceAll(err.Error(), " ", "_"))
		}
	}
	open := func(path string, flags int) error {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}
	report("open-null-rw", open("/dev/null", unix.O_RDWR))
	report("open-null-r", open("/dev/null", unix.O_RDONLY))
	report("open-null-w", open("/dev/null", unix.O_WRONLY))
	report("open-zero-r", open("/dev/zero", unix.O_RDONLY))
	report("open-urandom-r", open("/dev/urandom", unix.O_RDONLY))
	report("open-pts", func() error { // c 5:2, then its c 136:N
		ptmx, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("ptmx: %w", err)
		}
		defer unix.Close(ptmx)
		if err := unix.IoctlSetPointerInt(ptmx, unix.TIOCSPTLCK, 0); err != nil {
			return err
		}
		n, err := unix.IoctlGetInt(ptmx, unix.TIOCGPTN)
		if err != nil {
			return err
		}
		return open("/dev/pts/"+strconv.Itoa(n), unix.O_RDWR|unix.O_NOCTTY)
	}())
	report("open-mem-r", open(filepath.Join(nodes, "mem"), unix.O_RDONLY))   // c 1:1, made outside
	report("open-loop-r", open(filepath.Join(nodes, "loop"), unix.O_RDONLY)) // b 7:0, made outside
	report("mknod-mem", unix.Mknod(filepath.Join(nodes, "mem2"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 1))))
	report("mknod-loop", unix.Mknod(filepath.Join(nodes, "loop2"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))))
	report("mknod-null", unix.Mknod(filepath.Join(nodes, "null2"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	report("open-null2-rw", open(filepath.Join(nodes, "null2"), unix.O_RDWR))
}

// defaultWant is what the default policy must give.
var defaultWant = map[string]string{
	"open-null-rw": "ok", "open-null-r": "ok", "open-null-w": "ok", "open-zero-r": "ok",
	"open-urandom-r": "ok", "open-pts": "ok",
	"open-mem-r": "EPERM", "open-loop-r": "EPERM", "mknod-mem": "EPERM", "mknod-loop": "EPERM",
	"mknod-null": "ok", "open-null2-rw": "ok",
}

// nullReadOnly is the policy "c 1:3 r" and what it must give.
var (
	nullReadOnly     = []Rule{{Char, 1, 3, Read}}
	nullReadOnlyWant = map[string]string{
		"open-null-rw": "EPERM", "open-null-r": "ok", "open-null-w": "EPERM", "open-zero-r": "EPERM",
		"open-urandom-r": "EPERM", "open-pts": "EPERM",
		"open-mem-r": "EPERM", "open-loop-r": "EPERM", "mknod-mem": "EPERM", "mknod-loop": "EPERM",
		"mknod-null": "EPERM", "open-null2-rw": "ENOENT",
	}
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (cgroups, mknod, BPF)")
	}
}

// nodesDir makes a directory holding c 1:1 (mem) and b 7:0 (loop0), made
// here, outside the policy, for the child to try to open.
func nodesDir(t *testing.T) string {
	dir := t.TempDir()
	for _, n := range []struct {
		name string
		mode uint32
		dev  uint64
	}{{"mem", unix.S_IFCHR, unix.Mkdev(1, 1)}, {"loop", unix.S_IFBLK, unix.Mkdev(7, 0)}} {
		if err := unix.Mknod(filepath.Join(dir, n.name), n.mode|0o600, int(n.dev)); err != nil {
			t.Skipf("cannot make device nodes in %s (nodev?): %v", dir, err)
		}
	}
	return dir
}

// runProbe starts a probe child, moves it into cgroupDir (through procsFile,
// cgroup.procs) and returns its report.
func runProbe(t *testing.T, cgroupDir, nodes string) map[string]string {
	t.Helper()
	for _, n := range []string{"mem2", "loop2", "null2"} {
		os.Remove(filepath.Join(nodes, n))
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=probe", nodesEnv+"="+nodes)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err = os.WriteFile(filepath.Join(cgroupDir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("move child into %s: %v", cgroupDir, err)
	}
	stdin.Write([]byte{1})
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("probe child: %v\n%s", err, stderr.String())
	}
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok {
			got[k] = v
		}
	}
	return got
}

func checkProbe(t *testing.T, policy string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s = %q, want %q", policy, k, got[k], w)
		}
	}
}

// ownCgroup finds, from /proc/self/mountinfo and /proc/self/cgroup, the
// directory of this process's cgroup in the hierarchy that match picks: a v1
// one by controller name, or v2 with "".
func ownCgroup(t testing.TB, controller string) (string, bool) {
	t.Helper()
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var path string
	found := false
	for line := range strings.Lines(string(cg)) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		if (controller == "" && f[0] == "0" && f[1] == "") ||
			(controller != "" && (f[1] == controller || strings.HasPrefix(f[1], controller+",") ||
				strings.Contains(f[1], ","+controller))) {
			path, found = f[2], true
			break
		}
	}
	if !found {
		return "", false
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(mi)) {
		pre, post, ok := strings.Cut(strings.TrimSpace(line), " - ")
		if !ok {
			continue
		}
		pf, sf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(sf) < 3 {
			continue
		}
		root, mnt := pf[3], pf[4]
		switch {
		case controller == "" && sf[0] == "cgroup2":
		case controller != "" && sf[0] == "cgroup" && hasOpt(sf[2], controller):
		default:
			continue
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		return filepath.Join(mnt, rel), true
	}
	return "", false
}

func hasOpt(opts, o string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == o {
			return true
		}
	}
	return false
}

var seq atomic.Int32

// childCgroup makes a fresh cgroup under parent and removes it at the end.
func childCgroup(t *testing.T, parent string) string {
	t.Helper()
	dir := filepath.Join(parent, fmt.Sprintf("devbox-devtest-%d-%d", os.Getpid(), seq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("make test cgroup: %v", err)
	}
	t.Cleanup(func() {
		var err error
		for range 50 { // the last child may take a moment to leave
			if err = unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("remove test cgroup %s: %v", dir, err)
	})
	return dir
}

func TestCgroupV1(t *testing.T) {
	needRoot(t)
	parent, ok := ownCgroup(t, "devices")
	if !ok {
		t.Skip("no cgroup-v1 devices hierarchy mounted (a cgroup-v2-only host: TestCgroupV2 covers it)")
	}
	nodes := nodesDir(t)

	dir := childCgroup(t, parent)
	if err := ApplyV1(dir, Default()); err != nil {
		t.Fatal(err)
	}
	list, _ := os.ReadFile(filepath.Join(dir, "devices.list"))
	t.Logf("devices.list:\n%s", list)
	if strings.Contains(string(list), "a *:*") {
		t.Errorf("devices.list still allows everything:\n%s", list)
	}
	checkProbe(t, "default", runProbe(t, dir, nodes), defaultWant)

	dir = childCgroup(t, parent)
	if err := ApplyV1(dir, nullReadOnly); err != nil {
		t.Fatal(err)
	}
	checkProbe(t, "c 1:3 r", runProbe(t, dir, nodes), nullReadOnlyWant)

	// A child cgroup cannot be given more than its parent has.
	sub := childCgroup(t, dir)
	err := ApplyV1(sub, []Rule{{Char, 1, 5, Read}})
	if err == nil || !strings.Contains(err.Error(), `"c 1:5 r"`) {
		t.Errorf("allowing beyond the parent: err = %v, want EPERM naming the rule", err)
	}
}

func TestCgroupV2(t *testing.T) {
	needRoot(t)
	parent, ok := ownCgroup(t, "")
	if !ok {
		t.Skip("no cgroup-v2 hierarchy mounted here (cgroup v1 only); run it in the v2 VM: scripts/test-v2vm")
	}
	if _, err := os.Stat(filepath.Join(parent, "cgroup.procs")); err != nil {
		t.Skipf("cgroup v2 hierarchy at %s not usable: %v", parent, err)
	}
	t.Logf("test cgroups under %s", parent)
	nodes := nodesDir(t)
	dir := childCgroup(t, parent)

	// Attach from a process that then exits, like `devbox up`.
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=attach", cgroupEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("attach child: %v\n%s", err, out)
	}
	t.Logf("attach in a fresh process (ns): %s", strings.TrimSpace(string(out)))
	ids := attachedIDs(t, dir)
	if len(ids) != 1 {
		t.Fatalf("after two AttachV2 and exit: %d device programs attached, want 1", len(ids))
	}
	checkProbe(t, "default", runProbe(t, dir, nodes), defaultWant)

	// Replace it (BPF_F_REPLACE) with another policy.
	if err := AttachV2(dir, nullReadOnly); err != nil {
		t.Fatal(err)
	}
	if ids2 := attachedIDs(t, dir); len(ids2) != 1 || ids2[0] == ids[0] {
		t.Fatalf("after replacing: programs %v (before %v), want one new one", ids2, ids)
	}
	checkProbe(t, "c 1:3 r", runProbe(t, dir, nodes), nullReadOnlyWant)

	// Several programs there (someone else attached too): all replaced by ours.
	allowAll, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.CGroupDevice, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer allowAll.Close()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := link.RawAttachProgram(link.RawAttachProgramOptions{Target: fd, Program: allowAll,
		Attach: ebpf.AttachCGroupDevice, Flags: unix.BPF_F_ALLOW_MULTI}); err != nil {
		t.Fatal(err)
	}
	if n := len(attachedIDs(t, dir)); n != 2 {
		t.Fatalf("%d programs attached, want 2", n)
	}
	if err := AttachV2(dir, Default()); err != nil {
		t.Fatal(err)
	}
	if n := len(attachedIDs(t, dir)); n != 1 {
		t.Fatalf("after AttachV2 over 2 programs: %d attached, want 1", n)
	}
	checkProbe(t, "default again", runProbe(t, dir, nodes), defaultWant)

	// A program attached below ours cannot allow more (ALLOW_MULTI).
	sub := childCgroup(t, dir)
	if err := link.RawAttachProgram(link.RawAttachProgramOptions{Target: openDir(t, sub), Program: allowAll,
		Attach: ebpf.AttachCGroupDevice, Flags: unix.BPF_F_ALLOW_MULTI}); err != nil {
		t.Fatal(err)
	}
	checkProbe(t, "allow-all below default", runProbe(t, sub, nodes), defaultWant)
}

func openDir(t *testing.T, dir string) int {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func attachedIDs(t *testing.T, dir string) []ebpf.ProgramID {
	t.Helper()
	res, err := link.QueryPrograms(link.QueryOptions{Target: openDir(t, dir), Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		t.Fatal(err)
	}
	var ids []ebpf.ProgramID
	for _, p := range res.Programs {
		ids = append(ids, p.ID)
	}
	return ids
}
