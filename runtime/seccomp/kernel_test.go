package seccomp

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel tests re-execute the test binary with childEnv set; the child
// locks its thread, installs Default() and reports what each probe got.
const childEnv = "DEVBOX_SECCOMP_TEST_CHILD"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(childEnv); mode {
	case "":
		os.Exit(m.Run())
	case "probe":
		os.Exit(probeChild(os.Getenv("DEVBOX_SECCOMP_TEST_DIR")))
	case "x32":
		lockAndInstall()
		unix.RawSyscall(0x40000000|39, 0, 0, 0) // x32 getpid: killed
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown child mode", mode)
		os.Exit(2)
	}
}

// lockAndInstall confines the calling goroutine's thread as devbox will:
// locked, CAP_SYS_ADMIN held (or no_new_privs when the test is not root).
func lockAndInstall() time.Duration {
	runtime.LockOSThread()
	f, err := Default()
	if err != nil {
		fmt.Println("FAIL Default:", err)
		os.Exit(1)
	}
	if os.Geteuid() != 0 {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			fmt.Println("FAIL no_new_privs:", err)
			os.Exit(1)
		}
	}
	t0 := time.Now()
	if err := Install(f); err != nil {
		fmt.Println("FAIL Install:", err)
		os.Exit(1)
	}
	return time.Since(t0)
}

type probe struct {
	name string
	call func() (uintptr, unix.Errno)
	want unix.Errno // 0: must succeed
}

func sys(nr uintptr, a ...uintptr) func() (uintptr, unix.Errno) {
	return func() (uintptr, unix.Errno) {
		var x [6]uintptr
		copy(x[:], a)
		r, _, e := unix.RawSyscall6(nr, x[0], x[1], x[2], x[3], x[4], x[5])
		return r, e
	}
}

func cstr(s string) uintptr {
	b, _ := unix.BytePtrFromString(s)
	return uintptr(unsafe.Pointer(b))
}

// rawFork is clone(flags) with fork semantics; the child exits at once.
//
//go:nosplit
func rawFork(flags uintptr) (uintptr, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_CLONE, flags, 0, 0, 0, 0, 0)
	if e == 0 && r == 0 {
		unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
	return r, e
}

func forkAndWait(flags uintptr) func() (uintptr, unix.Errno) {
	return func() (uintptr, unix.Errno) {
		pid, e := rawFork(flags)
		if e == 0 {
			var ws unix.WaitStatus
			if _, err := unix.Wait4(int(pid), &ws, 0, nil); err != nil {
				return 0, err.(unix.Errno)
			}
		}
		return pid, e
	}
}

func probeChild(dir string) int {
	installTime := lockAndInstall()
	const sigchld = uintptr(unix.SIGCHLD)
	closeFd := func(f func() (uintptr, unix.Errno)) func() (uintptr, unix.Errno) {
		return func() (uintptr, unix.Errno) {
			r, e := f()
			if e == 0 {
				unix.Close(int(r))
			}
			return r, e
		}
	}
	neg := func(i int) uintptr { return uintptr(i) } // -3 etc. as the kernel sees them
	probes := []probe{
		// Refused: with a broken filter each of these fails harmlessly
		// (bad pointer, bad fd, bad flags) with an errno other than EPERM.
		{"keyctl(GET_KEYRING_ID, session)", sys(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, neg(unix.KEY_SPEC_SESSION_KEYRING), 0), unix.EPERM},
		{"add_key(NULL)", sys(unix.SYS_ADD_KEY), unix.EPERM},
		{"request_key(NULL)", sys(unix.SYS_REQUEST_KEY), unix.EPERM},
		{"unshare(CLONE_NEWUSER)", sys(unix.SYS_UNSHARE, unix.CLONE_NEWUSER), unix.EPERM},
		{"unshare(CLONE_NEWNS)", sys(unix.SYS_UNSHARE, unix.CLONE_NEWNS), unix.EPERM},
		{"setns(-1)", sys(unix.SYS_SETNS, neg(-1), 0), unix.EPERM},
		{"clone(CLONE_NEWNS)", forkAndWait(unix.CLONE_NEWNS | sigchld), unix.EPERM},
		{"clone(CLONE_NEWUSER)", forkAndWait(unix.CLONE_NEWUSER | sigchld), unix.EPERM},
		{"clone(CLONE_NEWNET)", forkAndWait(unix.CLONE_NEWNET | sigchld), unix.EPERM},
		{"mount(tmpfs)", func() (uintptr, unix.Errno) {
			r, e := sys(unix.SYS_MOUNT, cstr("none"), cstr(dir), cstr("tmpfs"), 0, cstr(""))()
			if e == 0 {
				unix.Unmount(dir, unix.MNT_DETACH)
			}
			return r, e
		}, unix.EPERM},
		{"umount2(dir)", sys(unix.SYS_UMOUNT2, cstr(dir), 0), unix.EPERM},
		{"pivot_root(NULL)", sys(unix.SYS_PIVOT_ROOT), unix.EPERM},
		{"bpf(-1)", sys(unix.SYS_BPF, neg(-1), 0, 0), unix.EPERM},
		{"perf_event_open(NULL)", sys(unix.SYS_PERF_EVENT_OPEN, 0, 0, neg(-1), neg(-1), 0), unix.EPERM},
		{"open_by_handle_at(-1, NULL)", sys(unix.SYS_OPEN_BY_HANDLE_AT, neg(-1), 0, 0), unix.EPERM},
		{"init_module(NULL)", sys(unix.SYS_INIT_MODULE), unix.EPERM},
		{"finit_module(-1)", sys(unix.SYS_FINIT_MODULE, neg(-1), cstr(""), 0), unix.EPERM},
		{"delete_module(NULL)", sys(unix.SYS_DELETE_MODULE), unix.EPERM},
		{"kexec_load(bad flags)", sys(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0x8000), unix.EPERM},
		{"userfaultfd(bad flags)", sys(unix.SYS_USERFAULTFD, ^uintptr(0)), unix.EPERM},
		{"io_uring_setup(0, NULL)", sys(unix.SYS_IO_URING_SETUP), unix.EPERM},
		{"syslog(SIZE_BUFFER)", sys(unix.SYS_SYSLOG, 10, 0, 0), unix.EPERM},
		{"reboot(bad magic)", sys(unix.SYS_REBOOT), unix.EPERM},
		{"swapon(NULL)", sys(unix.SYS_SWAPON), unix.EPERM},
		{"quotactl(NULL)", sys(unix.SYS_QUOTACTL), unix.EPERM},
		{"personality(ADDR_NO_RANDOMIZE)", sys(unix.SYS_PERSONALITY, 0x0040000), unix.EPERM},
		{"socket(AF_ALG)", closeFd(sys(unix.SYS_SOCKET, unix.AF_ALG, unix.SOCK_SEQPACKET, 0)), unix.EPERM},
		{"socket(AF_VSOCK)", closeFd(sys(unix.SYS_SOCKET, unix.AF_VSOCK, unix.SOCK_STREAM, 0)), unix.EPERM},
		{"socket(1<<32|AF_ALG)", closeFd(sys(unix.SYS_SOCKET, 1<<32|unix.AF_ALG, unix.SOCK_SEQPACKET, 0)), unix.EPERM},
		// ENOSYS: clone3 (libc falls back to clone) and numbers past the profile.
		{"clone3(NULL, 0)", sys(unix.SYS_CLONE3, 0, 0), unix.ENOSYS},
		{"syscall 470 (listns)", sys(470), unix.ENOSYS},
		{"syscall 1000", sys(1000), unix.ENOSYS},
		// Allowed.
		{"personality(0xffffffff)", sys(unix.SYS_PERSONALITY, 0xffffffff), 0},
		{"personality(PER_LINUX)", sys(unix.SYS_PERSONALITY, 0), 0},
		{"getpid", sys(unix.SYS_GETPID), 0},
		{"clone(SIGCHLD) (fork)", forkAndWait(sigchld), 0},
		{"socket(AF_INET)", closeFd(sys(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0)), 0},
		{"socket(AF_UNIX)", closeFd(sys(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0)), 0},
		{"socket(AF_NETLINK)", closeFd(sys(unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)), 0},
		{"process_vm_readv(self, 0 iov)", sys(unix.SYS_PROCESS_VM_READV, uintptr(os.Getpid()), 0, 0, 0, 0, 0), 0},
		{"chroot(/nonexistent) reaches the kernel", func() (uintptr, unix.Errno) {
			r, e := sys(unix.SYS_CHROOT, cstr("/nonexistent-devbox"))()
			if e == unix.ENOENT {
				e = 0
			}
			return r, e
		}, 0},
		{"open/read/write", func() (uintptr, unix.Errno) {
			b, err := os.ReadFile("/proc/thread-self/status")
			if err != nil || !bytes.Contains(b, []byte("Seccomp:\t2")) {
				return 0, unix.EIO
			}
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				return 0, err.(unix.Errno)
			}
			defer unix.Close(p[0])
			defer unix.Close(p[1])
			if _, err := unix.Write(p[1], []byte("x")); err != nil {
				return 0, err.(unix.Errno)
			}
			return 0, 0
		}, 0},
		{"exec /bin/true", func() (uintptr, unix.Errno) {
			if err := exec.Command("/bin/true").Run(); err != nil {
				fmt.Println("  exec:", err)
				return 0, unix.EIO
			}
			return 0, 0
		}, 0},
		{"exec sh -c 'cat /proc/self/status' shows the filter inherited", func() (uintptr, unix.Errno) {
			out, err := exec.Command("/bin/sh", "-c", "grep '^Seccomp:' /proc/self/status").Output()
			if err != nil || strings.TrimSpace(string(out)) != "Seccomp:\t2" {
				fmt.Printf("  got %q, %v\n", out, err)
				return 0, unix.EIO
			}
			return 0, 0
		}, 0},
	}
	fails := 0
	for _, p := range probes {
		r, e := p.call()
		if e == p.want {
			fmt.Printf("ok   %-45s -> %d %v\n", p.name, int(r), errName(e))
		} else {
			fmt.Printf("FAIL %-45s -> %d %v, want %v\n", p.name, int(r), errName(e), errName(p.want))
			fails++
		}
	}
	// Only this thread is confined: another goroutine runs on another thread.
	done := make(chan unix.Errno)
	go func() {
		_, _, e := unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, neg(unix.KEY_SPEC_SESSION_KEYRING), 0)
		done <- e
	}()
	if e := <-done; e == unix.EPERM {
		fmt.Println("FAIL another thread is confined too (keyctl: EPERM)")
		fails++
	} else {
		fmt.Printf("ok   %-45s -> %v\n", "keyctl from an unconfined thread", errName(e))
	}
	fmt.Printf("install took %v\n", installTime)
	if fails > 0 {
		return 1
	}
	return 0
}

func errName(e unix.Errno) string {
	if e == 0 {
		return "ok"
	}
	return unix.ErrnoName(e)
}

func TestKernelProbes(t *testing.T) {
	if _, ok := testArches[runtime.GOARCH]; !ok {
		t.Skip("no filter for " + runtime.GOARCH)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=probe", "DEVBOX_SECCOMP_TEST_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
}

func TestKernelKillsX32(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("x32 is an amd64 ABI")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=x32")
	out, err := cmd.CombinedOutput()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("x32 syscall: child %v (%s), want killed by SIGSYS", err, out)
	}
}
