// Package seccomp compiles Docker's default seccomp profile into a classic BPF
// program, in pure Go (no cgo, no libseccomp), and installs it on the calling
// thread.
//
// # What the filter does
//
// It follows moby's profiles/seccomp/default.json for a container with
// Docker's default capabilities (CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD
// NET_RAW SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL
// AUDIT_WRITE) on a kernel ≥ 4.8:
//
//   - the profile's allowlist is allowed, plus ptrace, process_vm_readv and
//     process_vm_writev (minKernel 4.8), chroot (CAP_SYS_CHROOT) and the arch
//     rules (arch_prctl and modify_ldt on amd64; the arm_* calls on arm64);
//   - clone is allowed only without namespace flags (CLONE_NEWNS, NEWUTS,
//     NEWIPC, NEWUSER, NEWPID, NEWNET, NEWCGROUP); clone3 fails with ENOSYS so
//     libc falls back to clone; personality only with the listed personas;
//     socket with any domain but AF_ALG and AF_VSOCK;
//   - everything else fails with EPERM: mount, umount2, unshare, setns, keyctl,
//     add_key, request_key, bpf, perf_event_open, open_by_handle_at, kexec_*,
//     *_module, io_uring_*, userfaultfd, pivot_root, swapon, reboot, syslog,
//     ... — in short every syscall the profile gates on a capability outside
//     the default set, and every one it does not name;
//   - syscall numbers above every number the profile names fail with ENOSYS,
//     as runc makes them, so that software probing a newer syscall falls back;
//   - a foreign ABI is killed (SECCOMP_RET_KILL_PROCESS): only AUDIT_ARCH_X86_64
//     with numbers below the x32 bit on amd64, only AUDIT_ARCH_AARCH64 on arm64.
//     Docker also admits i386/x32 and AArch32 binaries; devbox does not.
//
// The program is a balanced binary search over ranges of syscall numbers with
// one action (66 ranges, 153 instructions on amd64): at most 9 comparisons,
// arch checks included, to reach a syscall's action (the argument checks of
// clone, socket and personality add 1 to 6), instead of a chain of hundreds.
// Since Linux 5.11 the kernel also caches, when the filter is installed, the
// numbers the program always allows, so getpid, read, write, ... skip the
// program entirely; the search matters for refused and argument-checked
// syscalls and for that precomputation.
//
// # Lifecycle
//
// Default builds the program once per process (sync.Once) and hands each
// caller its own copy. Install loads a program on the calling thread only
// (seccomp(SECCOMP_SET_MODE_FILTER) without TSYNC); it then applies to that
// thread and everything it forks, and can never be removed. The intended
// sequence, in the process that starts a container's processes, is:
//
//	filter, err := seccomp.Default()  // cheap after the first call
//	runtime.LockOSThread()            // never unlocked: the thread dies with the goroutine
//	// ... namespaces, mounts: everything that needs clone/unshare/mount flags ...
//	err = seccomp.Install(filter)     // while the thread still has CAP_SYS_ADMIN,
//	                                  // so no_new_privs is not needed and setuid
//	                                  // programs (sudo) keep working inside
//	// drop capabilities (capset is allowed), then fork/exec the container's
//	// processes from this same thread (os/exec's clone(CLONE_VFORK|CLONE_VM|
//	// CLONE_PIDFD) passes; SysProcAttr.UseCgroupFD, which needs clone3, does not).
//
// Other threads of the process stay unconfined: the Go runtime creates new
// threads from its template thread, never from a thread locked with
// LockOSThread, so the filter does not leak into the rest of the program, and a
// goroutine that exits while locked takes its thread down with it.
//
// Whether to confine at all is the caller's decision: with
// [security] seccomp = "unconfined" it simply does not call Install.
//
// # Regenerating
//
// The syscall tables (sysnum_linux_*.go) are generated from
// golang.org/x/sys/unix by gen_sysnum.go; run go generate after updating x/sys.
package seccomp

//go:generate go run gen_sysnum.go
