package seccomp

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// vm runs a classic BPF seccomp program on one seccomp_data, as the kernel
// does, and counts the conditional jumps it takes on the way.
func vm(t *testing.T, prog []unix.SockFilter, nr, arch uint32, args [6]uint64) (ret uint32, cmps int) {
	t.Helper()
	var data [64]byte
	le := func(off int, v uint32) {
		data[off], data[off+1], data[off+2], data[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	le(offNr, nr)
	le(offArch, arch)
	for i, a := range args {
		le(int(offArgLo(i)), uint32(a))
		le(int(offArgHi(i)), uint32(a>>32))
	}
	var A uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K%4 != 0 || in.K+4 > 64 {
				t.Fatalf("pc %d: load of offset %d", pc, in.K)
			}
			o := in.K
			A = uint32(data[o]) | uint32(data[o+1])<<8 | uint32(data[o+2])<<16 | uint32(data[o+3])<<24
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			var c bool
			switch in.Code &^ unix.BPF_JMP {
			case unix.BPF_JEQ:
				c = A == in.K
			case unix.BPF_JGE:
				c = A >= in.K
			default:
				c = A&in.K != 0
			}
			cmps++
			if c {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K, cmps
		default:
			t.Fatalf("pc %d: unexpected opcode %#x", pc, in.Code)
		}
	}
	t.Fatalf("program ran off its end (nr %d)", nr)
	return 0, 0
}

// xsysTable parses x/sys's syscall table for arch, so the tests can check
// both arches and the generated files whatever GOARCH they run on.
func xsysTable(t *testing.T, arch string) []sysnum {
	t.Helper()
	dir := xsysDir(t)
	src, err := os.ReadFile(filepath.Join(dir, "unix", "zsysnum_linux_"+arch+".go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []sysnum
	for _, m := range regexp.MustCompile(`(?m)^\s*SYS_(\w+)\s*=\s*(\d+)`).FindAllStringSubmatch(string(src), -1) {
		if m[1] == "ARCH_SPECIFIC_SYSCALL" {
			continue
		}
		nr, _ := strconv.Atoi(m[2])
		out = append(out, sysnum{strings.ToLower(m[1]), uint32(nr)})
	}
	if len(out) < 250 {
		t.Fatalf("%s: only %d syscalls parsed from x/sys", arch, len(out))
	}
	return out
}

var xsysDirOnce = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "golang.org/x/sys").Output()
	return strings.TrimSpace(string(out)), err
})

func xsysDir(t *testing.T) string {
	dir, err := xsysDirOnce()
	if err != nil || dir == "" {
		t.Skipf("cannot locate golang.org/x/sys (go list: %v)", err)
	}
	return dir
}

var testArches = map[string]archInfo{
	"amd64": {name: "amd64", auditArch: unix.AUDIT_ARCH_X86_64, nrLimit: 0x40000000},
	"arm64": {name: "arm64", auditArch: unix.AUDIT_ARCH_AARCH64},
}

// absent are the profile's names that x/sys does not have for an arch: the
// 32-bit ABIs' variants on both, and on arm64 the legacy calls the generic
// syscall table never had (open, stat, fork, ...) and the AArch32-only arm_*.
var absentCommon = strings.Fields(`_llseek _newselect chown32 clock_adjtime64
	clock_getres_time64 clock_gettime64 clock_nanosleep_time64 fadvise64_64 fchown32
	fcntl64 fstat64 fstatat64 fstatfs64 ftruncate64 futex_time64 getegid32 geteuid32
	getgid32 getgroups32 getresgid32 getresuid32 getuid32 io_pgetevents_time64 ipc
	lchown32 lstat64 mmap2 mq_timedreceive_time64 mq_timedsend_time64 ppoll_time64
	pselect6_time64 recv recvmmsg_time64 riscv_hwprobe rt_sigtimedwait_time64
	sched_rr_get_interval_time64 semtimedop_time64 send sendfile64 setfsgid32 setfsuid32
	setgid32 setgroups32 setregid32 setresgid32 setresuid32 setreuid32 setuid32
	sigprocmask sigreturn socketcall stat64 statfs64 timer_gettime64 timer_settime64
	timerfd_gettime64 timerfd_settime64 truncate64 ugetrlimit utimensat_time64 waitpid`)

var absentArch = map[string][]string{
	"amd64": nil,
	"arm64": strings.Fields(`access alarm chmod chown creat dup2 epoll_create epoll_ctl_old
		epoll_wait epoll_wait_old eventfd fork futimesat get_thread_area getdents getpgrp
		inotify_init lchown link lstat mkdir mknod open pause pipe poll readlink rename
		rmdir select set_thread_area signalfd stat symlink time unlink uretprobe utime
		utimes vfork arm_fadvise64_64 arm_sync_file_range breakpoint cacheflush set_tls
		sync_file_range2`),
}

// TestAllowlistInXSys: every syscall the profile allows for an arch exists in
// x/sys for that arch, except exactly the names known to be absent there.
func TestAllowlistInXSys(t *testing.T) {
	for arch := range testArches {
		t.Run(arch, func(t *testing.T) {
			have := map[string]bool{}
			for _, s := range xsysTable(t, arch) {
				have[s.name] = true
			}
			names := append(append(append([]string{}, dockerAllow...), dockerAllowWithDefaultCaps...), dockerAllowArch[arch]...)
			names = append(names, "clone", "clone3", "personality", "socket")
			var missing []string
			for _, n := range names {
				if !have[n] {
					missing = append(missing, n)
				}
			}
			want := append(append([]string{}, absentCommon...), absentArch[arch]...)
			sort.Strings(missing)
			sort.Strings(want)
			if strings.Join(missing, " ") != strings.Join(want, " ") {
				t.Errorf("allowlist names absent from x/sys for %s:\n got  %v\n want %v", arch, missing, want)
			}
			// The refused names must be real too, or the tests below prove nothing.
			for _, n := range append(gatedNames(), neverAllowed...) {
				if !have[n] && !only32bit(n) && !(arch == "arm64" && isLegacyX86(n)) {
					t.Errorf("%s: refused syscall %q not in x/sys", arch, n)
				}
			}
		})
	}
}

// only32bit are refused names that only 32-bit ABIs have.
func only32bit(n string) bool {
	return n == "umount" || n == "stime" || n == "clock_settime64"
}

// isLegacyX86 are refused names that only x86 has.
func isLegacyX86(n string) bool {
	switch n {
	case "iopl", "ioperm", "modify_ldt", "uselib", "_sysctl",
		"create_module", "get_kernel_syms", "query_module", "ustat", "sysfs", "uprobe":
		return true
	}
	return false
}

func gatedNames() []string {
	var out []string
	for _, ns := range dockerGated {
		out = append(out, ns...)
	}
	return out
}

// TestGeneratedTable: sysnum_linux_$GOARCH.go matches x/sys (run go generate
// if this fails after an x/sys update).
func TestGeneratedTable(t *testing.T) {
	if _, ok := testArches[runtime.GOARCH]; !ok {
		t.Skip("no table for " + runtime.GOARCH)
	}
	want := xsysTable(t, runtime.GOARCH)
	sort.Slice(want, func(i, j int) bool { return want[i].name < want[j].name })
	if len(want) != len(sysnums) {
		t.Fatalf("generated table has %d syscalls, x/sys %d: run go generate", len(sysnums), len(want))
	}
	for i := range want {
		if want[i] != sysnums[i] {
			t.Fatalf("entry %d: generated %v, x/sys %v: run go generate", i, sysnums[i], want[i])
		}
	}
}

// expecter returns the profile's decision computed directly from the rule lists,
// independently of runs() and tree().
func expecter(a archInfo, table []sysnum) func(nr uint32, args [6]uint64) uint32 {
	allow := map[string]bool{}
	for _, n := range append(append(append([]string{}, dockerAllow...), dockerAllowWithDefaultCaps...), dockerAllowArch[a.name]...) {
		allow[n] = true
	}
	names, highest := map[uint32]string{}, uint32(0)
	for _, s := range table {
		names[s.nr] = s.name
		switch {
		case allow[s.name], s.name == "clone", s.name == "clone3", s.name == "personality", s.name == "socket":
			highest = max(highest, s.nr)
		}
	}
	return func(nr uint32, args [6]uint64) uint32 {
		if a.nrLimit != 0 && nr >= a.nrLimit {
			return retKillProcess
		}
		if nr > highest {
			return retENOSYS
		}
		return decide(names[nr], allow[names[nr]], args)
	}
}

func decide(name string, allowed bool, args [6]uint64) uint32 {
	switch name {
	case "clone":
		if args[0]&(unix.CLONE_NEWNS|unix.CLONE_NEWUTS|unix.CLONE_NEWIPC|unix.CLONE_NEWUSER|unix.CLONE_NEWPID|unix.CLONE_NEWNET|unix.CLONE_NEWCGROUP) != 0 {
			return retEPERM
		}
		return retAllow
	case "clone3":
		return retENOSYS
	case "personality":
		for _, v := range []uint64{0, 8, 0x20000, 0x20008, 0xffffffff} {
			if args[0] == v {
				return retAllow
			}
		}
		return retEPERM
	case "socket":
		if d := uint32(args[0]); d == unix.AF_ALG || d == unix.AF_VSOCK {
			return retEPERM
		}
		return retAllow
	}
	if allowed {
		return retAllow
	}
	return retEPERM
}

const sigchld = uint64(unix.SIGCHLD)

var argSets = [][6]uint64{
	{}, {1, 2, 3, 4, 5, 6}, {^uint64(0), ^uint64(0)},
	{sigchld}, {unix.CLONE_VM | unix.CLONE_VFORK | unix.CLONE_PIDFD | sigchld},
	{unix.CLONE_NEWNS}, {unix.CLONE_NEWUSER | sigchld}, {unix.CLONE_NEWCGROUP}, {unix.CLONE_NEWTIME},
	{unix.CLONE_NEWNET | 1<<32}, {1 << 32}, {unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC},
	{8}, {0x20000}, {0x20008}, {0xffffffff}, {0x0040000}, {0x1_0000_0000}, {0x1_ffff_ffff}, {9},
	{unix.AF_INET}, {unix.AF_UNIX}, {unix.AF_NETLINK}, {unix.AF_PACKET}, {unix.AF_ALG}, {unix.AF_VSOCK},
	{39}, {41}, {1<<32 | unix.AF_ALG}, {1<<32 | unix.AF_VSOCK},
}

// TestFilterExhaustive runs the program of each arch on every syscall number
// up to well past the table and past the x32 bit, with argument sets that
// cover each rule's edges, and compares with expect.
func TestFilterExhaustive(t *testing.T) {
	for arch, a := range testArches {
		t.Run(arch, func(t *testing.T) {
			table := xsysTable(t, arch)
			prog, err := build(a, table)
			if err != nil {
				t.Fatal(err)
			}
			if len(prog) >= bpfMaxInsns {
				t.Fatalf("%d instructions, kernel limit %d", len(prog), bpfMaxInsns)
			}
			expect := expecter(a, table)
			nrs := []uint32{0x3fffffff, 0x40000000, 0x40000027, 0x7fffffff, 0x80000000, 0xffffffff}
			for nr := uint32(0); nr < 1100; nr++ {
				nrs = append(nrs, nr)
			}
			maxCmp, sumCmp, nAllowed := 0, 0, 0
			for _, nr := range nrs {
				for _, args := range argSets {
					got, cmps := vm(t, prog, nr, a.auditArch, args)
					if want := expect(nr, args); got != want {
						t.Errorf("nr %d args %#x: got %#x want %#x", nr, args[0], got, want)
					}
					if args == ([6]uint64{}) && got == retAllow {
						maxCmp, sumCmp, nAllowed = max(maxCmp, cmps), sumCmp+cmps, nAllowed+1
					}
				}
			}
			// A foreign arch is killed whatever the number.
			for _, other := range []uint32{unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_ARM, unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_AARCH64, 0} {
				if other == a.auditArch {
					continue
				}
				if got, _ := vm(t, prog, 39, other, [6]uint64{}); got != retKillProcess {
					t.Errorf("arch %#x: got %#x, want KILL_PROCESS", other, got)
				}
			}
			t.Logf("%s: %d instructions, %d ranges; allowed syscalls: %d, comparisons max %d avg %.1f",
				arch, len(prog), len(runs(mustResolve(t, a, table))), nAllowed, maxCmp, float64(sumCmp)/float64(nAllowed))
		})
	}
}

func mustResolve(t *testing.T, a archInfo, table []sysnum) map[uint32]action {
	acts, err := resolve(a, table)
	if err != nil {
		t.Fatal(err)
	}
	return acts
}

// TestFarJumps forces subtrees past 255 instructions, where the tree must hop
// with BPF_JA, and checks the search still lands right.
func TestFarJumps(t *testing.T) {
	var rs []run
	for i := 0; i < 600; i++ {
		rs = append(rs, run{uint32(i * 2), action(1 + i%2)}) // allow, ENOSYS, allow, ...
	}
	prog := append([]unix.SockFilter{ldAbs(offNr)}, tree(rs)...)
	ja := 0
	for _, in := range prog {
		if in.Code == unix.BPF_JMP|unix.BPF_JA {
			ja++
		}
	}
	if ja == 0 {
		t.Fatal("no BPF_JA emitted for a tree this size")
	}
	for nr := uint32(0); nr < 1210; nr++ {
		i := min(int(nr/2), len(rs)-1)
		want := retAllow
		if rs[i].act == actENOSYS {
			want = retENOSYS
		}
		if got, _ := vm(t, prog, nr, 0, [6]uint64{}); got != want {
			t.Fatalf("nr %d: got %#x want %#x", nr, got, want)
		}
	}
}

func TestDefaultCachedAndCopied(t *testing.T) {
	a, err := Default()
	if _, ok := testArches[runtime.GOARCH]; !ok {
		if err == nil {
			t.Fatal("Default on an unsupported arch did not fail")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	a[len(a)-1].K = 0xdead
	b, _ := Default()
	if b[len(b)-1].K == 0xdead {
		t.Fatal("Default handed out its cached program")
	}
	if &a[0] == &b[0] {
		t.Fatal("two calls share one slice")
	}
}

func BenchmarkBuild(b *testing.B) {
	for b.Loop() {
		if _, err := build(nativeArch, sysnums[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDefault(b *testing.B) {
	for b.Loop() {
		if _, err := Default(); err != nil {
			b.Fatal(err)
		}
	}
}
