package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysnum is one syscall of the build's GOARCH, from x/sys (sysnum_linux_*.go).
type sysnum struct {
	name string
	nr   uint32
}

// archInfo is what the filter checks about the calling ABI.
type archInfo struct {
	name      string
	auditArch uint32 // seccomp_data.arch the filter accepts; others are killed
	nrLimit   uint32 // if non-zero, nr >= nrLimit is killed (amd64: x32)
}

// Return values of the filter.
const (
	retAllow       uint32 = unix.SECCOMP_RET_ALLOW
	retEPERM       uint32 = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retENOSYS      uint32 = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	retKillProcess uint32 = unix.SECCOMP_RET_KILL_PROCESS
)

// Offsets in struct seccomp_data (nr, arch, instruction_pointer, args[6]).
// Both supported arches are little-endian: an argument's low 32 bits come
// first.
const (
	offNr   = 0
	offArch = 4
)

func offArgLo(i int) uint32 { return 16 + 8*uint32(i) }
func offArgHi(i int) uint32 { return 16 + 8*uint32(i) + 4 }

// action is what the filter does with one syscall number.
type action uint8

const (
	actEPERM action = iota // the profile's default
	actAllow
	actENOSYS
	actClone       // allow unless a namespace flag is set
	actPersonality // allow only the listed personas
	actSocket      // allow unless AF_ALG or AF_VSOCK
)

var (
	defaultOnce   sync.Once
	defaultFilter []unix.SockFilter
	defaultErr    error
)

// Default returns Docker's default profile compiled for the running GOARCH.
// The program is built once per process; each call returns a fresh copy of
// it (a few KiB), so a caller can not weaken the filter of later callers.
func Default() ([]unix.SockFilter, error) {
	defaultOnce.Do(func() {
		defaultFilter, defaultErr = build(nativeArch, sysnums[:])
	})
	if defaultErr != nil {
		return nil, defaultErr
	}
	return append([]unix.SockFilter(nil), defaultFilter...), nil
}

// Install loads filter into the kernel as a seccomp filter of the calling
// thread only (seccomp(SECCOMP_SET_MODE_FILTER) without TSYNC). The filter
// then applies to that thread and to every process or thread it creates, for
// their lifetime; it cannot be removed.
//
// The caller must hold its goroutine on the thread (runtime.LockOSThread),
// never unlock it afterwards, and must either have CAP_SYS_ADMIN in its user
// namespace or have set no_new_privs (PR_SET_NO_NEW_PRIVS) on the thread.
func Install(filter []unix.SockFilter) error {
	if len(filter) == 0 || len(filter) > bpfMaxInsns {
		return fmt.Errorf("seccomp: filter of %d instructions (want 1..%d)", len(filter), bpfMaxInsns)
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	switch errno {
	case 0:
		return nil
	case unix.EACCES:
		return fmt.Errorf("seccomp: install filter: %w (needs CAP_SYS_ADMIN or no_new_privs on the calling thread)", errno)
	default:
		return fmt.Errorf("seccomp: install filter: %w", errno)
	}
}

// bpfMaxInsns is the kernel's limit on a classic BPF program (BPF_MAXINSNS).
const bpfMaxInsns = 4096

// run is a range of syscall numbers [start, next run's start) with one action.
type run struct {
	start uint32
	act   action
}

// resolve maps the profile's names to this arch's numbers. Names the arch
// does not have are skipped. It returns the action for each named number.
func resolve(arch archInfo, table []sysnum) (map[uint32]action, error) {
	byName := make(map[string]uint32, len(table))
	for _, s := range table {
		byName[s.name] = s.nr
	}
	acts := make(map[uint32]action)
	set := func(name string, a action) {
		if nr, ok := byName[name]; ok {
			acts[nr] = a
		}
	}
	for _, n := range dockerAllow {
		set(n, actAllow)
	}
	for _, n := range dockerAllowWithDefaultCaps {
		set(n, actAllow)
	}
	for _, n := range dockerAllowArch[arch.name] {
		set(n, actAllow)
	}
	set("clone", actClone)
	set("clone3", actENOSYS)
	set("personality", actPersonality)
	set("socket", actSocket)
	for _, n := range []string{"clone", "personality", "socket", "read", "execve"} {
		if _, ok := byName[n]; !ok {
			return nil, fmt.Errorf("seccomp: %s: no number for %s", arch.name, n)
		}
	}
	return acts, nil
}

// runs turns the per-number actions into sorted ranges of equal action.
// Numbers not named are EPERM up to the highest named number; above it, every
// number is ENOSYS. That is what runc does (its patchbpf stub), so that a
// program probing a syscall newer than the profile gets "not implemented" and
// takes its fallback, as it would on an older kernel.
func runs(acts map[uint32]action) []run {
	nrs := make([]uint32, 0, len(acts))
	for nr := range acts {
		nrs = append(nrs, nr)
	}
	sort.Slice(nrs, func(i, j int) bool { return nrs[i] < nrs[j] })
	var out []run
	add := func(start uint32, a action) {
		// Neighbours with the same action share one leaf (an argument
		// check does not depend on the number either).
		if len(out) > 0 && out[len(out)-1].act == a {
			return
		}
		out = append(out, run{start, a})
	}
	next := uint32(0)
	for _, nr := range nrs {
		if nr > next {
			add(next, actEPERM)
		}
		add(nr, acts[nr])
		next = nr + 1
	}
	add(next, actENOSYS)
	return out
}

// build compiles the profile for arch into a classic BPF program:
//
//	load arch; if != auditArch: KILL_PROCESS
//	load nr;   if >= nrLimit:   KILL_PROCESS          (amd64: x32 ABI)
//	binary search over the ranges of runs(): jge at each inner node,
//	each leaf a RET or a short argument check ending in RETs.
func build(arch archInfo, table []sysnum) ([]unix.SockFilter, error) {
	if arch.auditArch == 0 || len(table) == 0 {
		return nil, errors.New("seccomp: no filter for GOARCH " + runtime.GOARCH)
	}
	acts, err := resolve(arch, table)
	if err != nil {
		return nil, err
	}
	rs := runs(acts)
	prog := []unix.SockFilter{
		ldAbs(offArch),
		jump(unix.BPF_JEQ|unix.BPF_K, arch.auditArch, 1, 0),
		ret(retKillProcess),
		ldAbs(offNr),
	}
	if arch.nrLimit != 0 {
		prog = append(prog,
			jump(unix.BPF_JGE|unix.BPF_K, arch.nrLimit, 0, 1),
			ret(retKillProcess))
	}
	prog = append(prog, tree(rs)...)
	if len(prog) > bpfMaxInsns {
		return nil, fmt.Errorf("seccomp: program of %d instructions exceeds %d", len(prog), bpfMaxInsns)
	}
	return prog, nil
}

// tree emits a balanced binary search over rs. All jumps are forward and
// relative to the instruction after the jump, so a subtree is position
// independent and can be built bottom-up.
func tree(rs []run) []unix.SockFilter {
	if len(rs) == 1 {
		return leaf(rs[0].act)
	}
	mid := len(rs) / 2
	left, right := tree(rs[:mid]), tree(rs[mid:])
	var out []unix.SockFilter
	if len(left) <= 255 {
		// nr >= start of the right half ? right : left
		out = append(out, jump(unix.BPF_JGE|unix.BPF_K, rs[mid].start, uint8(len(left)), 0))
	} else {
		// A conditional jump reaches 255 instructions; hop via BPF_JA.
		out = append(out,
			jump(unix.BPF_JGE|unix.BPF_K, rs[mid].start, 0, 1),
			unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA, K: uint32(len(left))})
	}
	out = append(out, left...)
	return append(out, right...)
}

// leaf emits the code for one range; it always ends in a RET.
func leaf(a action) []unix.SockFilter {
	switch a {
	case actAllow:
		return []unix.SockFilter{ret(retAllow)}
	case actENOSYS:
		return []unix.SockFilter{ret(retENOSYS)}
	case actClone:
		// MASKED_EQ(arg0, 0x7E020000, 0): the mask's high word is zero, so
		// only the low word matters.
		return []unix.SockFilter{
			ldAbs(offArgLo(0)),
			jump(unix.BPF_JSET|unix.BPF_K, cloneNamespaceFlags, 1, 0),
			ret(retAllow),
			ret(retEPERM),
		}
	case actPersonality:
		// EQ on the full 64-bit argument, as libseccomp compares: the high
		// word must be zero and the low word one of the values.
		n := len(personalityAllowed)
		out := []unix.SockFilter{
			ldAbs(offArgHi(0)),
			jump(unix.BPF_JEQ|unix.BPF_K, 0, 0, uint8(n+1)), // → EPERM
			ldAbs(offArgLo(0)),
		}
		for i, v := range personalityAllowed {
			out = append(out, jump(unix.BPF_JEQ|unix.BPF_K, v, uint8(n-i), 0)) // → ALLOW
		}
		return append(out, ret(retEPERM), ret(retAllow))
	case actSocket:
		// The kernel takes the domain as an int, so only the low word is
		// compared: stricter than the profile's 64-bit LT/EQ/GT, which lets
		// 0x1_00000026 (AF_ALG once truncated) through.
		return []unix.SockFilter{
			ldAbs(offArgLo(0)),
			jump(unix.BPF_JEQ|unix.BPF_K, afALG, 2, 0),
			jump(unix.BPF_JEQ|unix.BPF_K, afVSOCK, 1, 0),
			ret(retAllow),
			ret(retEPERM),
		}
	default:
		return []unix.SockFilter{ret(retEPERM)}
	}
}

func ldAbs(off uint32) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off}
}

func jump(op uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_JMP | op, Jt: jt, Jf: jf, K: k}
}

func ret(k uint32) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k}
}
