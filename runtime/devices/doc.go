// Package devices holds a container's device policy and puts it into the
// kernel: which device nodes the container may open (read, write) and create
// (mknod). Everything else fails with EPERM, whatever the container's
// capabilities, and whatever nodes it finds or makes in its file systems.
//
// # The policy
//
// A policy is a list of Rules on top of "deny everything"; every rule allows
// (there are no deny rules, so no order matters). Default gives the standard
// nodes, the ones runc and Docker allow: null, zero, full, random, urandom,
// tty, console, ptmx and /dev/pts/*, each rwm. runc additionally lets a
// container mknod any node (but not open it) and allows /dev/net/tun; devbox
// does neither. A spec adds host devices with `[security] devices =
// ["/dev/fuse"]`: FromPath stats each path into a rule (c 10:229 rwm), and
// says clearly when the path is missing or not a device node. ParseRule reads
// the cgroup-v1 form ("c 10:229 rwm") for tests and tools.
//
// # Putting it into the kernel
//
// The runtime calls one of these on the container's own cgroup, after making
// the cgroup and before any of the container's processes runs code from the
// image (before the init execs or the first process joins):
//
//   - cgroup v1: ApplyV1 on the container's devices-controller directory
//     writes "a" to devices.deny, then one devices.allow line per rule.
//   - cgroup v2: AttachV2 builds a BPF_PROG_TYPE_CGROUP_DEVICE program for
//     the rules, loads it (BPF_PROG_LOAD) and attaches it to the cgroup with
//     BPF_PROG_ATTACH and BPF_F_ALLOW_MULTI, replacing a device program
//     AttachV2 put there before.
//
// Both need host root (CAP_SYS_ADMIN; CAP_BPF for the program), so they run
// in `devbox up` / `devbox run` on the host side, not in the container. A
// hybrid host (v1 controllers plus a v2 hierarchy with no controllers) can
// use either or both: a device program attached in the v2 hierarchy is
// enforced there too, in addition to the v1 devices controller.
//
// # Lifecycle
//
// Nothing in devbox holds the policy: it belongs to the cgroup. The v1 lists
// are cgroup state; the v2 program is attached with the legacy
// BPF_PROG_ATTACH, whose attachment is owned by the cgroup and not by a file
// descriptor, so it stays when `devbox up` exits and the detached
// environment runs on (a bpf_link would be detached with its last fd, unless
// pinned in a bpffs). The policy goes away with the cgroup: when devbox
// removes the container's cgroup directory, the kernel detaches and frees
// the program. Child cgroups the container makes inherit the policy and can
// only narrow it (BPF_F_ALLOW_MULTI: every program from the container's
// cgroup up to the root must allow an access).
//
// # The program
//
// The program reads the request (type, access, major, minor) from its
// context and tests it against the rules grouped by type, then access set,
// then major, so each comparison is made once: 20 instructions for the
// default rules, of which the verifier walks 37. The instructions are built
// with cilium/ebpf's asm package and marshalled once per rule list in a
// process. Loading is a direct BPF_PROG_LOAD, not ebpf.NewProgram, whose
// kernel feature probes would cost more than the load itself on the start
// path. Kernel 5.15 or later (memory-cgroup accounting of BPF programs since
// 5.11; on an older kernel a load refused for RLIMIT_MEMLOCK is retried once
// with the limit raised, then the limit is put back so the container does
// not inherit it).
//
// # Cost (this 2-core VM, kernel 6.18)
//
// The first AttachV2 in a fresh process (build, load, query, attach):
// 0.29–0.47 ms; later ones in the same process ~0.1 ms, most of it the
// kernel's verifier and JIT (BenchmarkLoad). ApplyV1: ~40 µs.
package devices
