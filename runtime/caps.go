package runtime

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/runtime/seccomp"
)

// defaultCaps is Docker's default capability set: enough for apt, chown,
// ping, su and sudo, not for mounting, loading modules or tracing.
var defaultCaps = []uintptr{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FSETID, unix.CAP_FOWNER, unix.CAP_MKNOD,
	unix.CAP_NET_RAW, unix.CAP_SETGID, unix.CAP_SETUID, unix.CAP_SETFCAP, unix.CAP_SETPCAP,
	unix.CAP_NET_BIND_SERVICE, unix.CAP_SYS_CHROOT, unix.CAP_KILL, unix.CAP_AUDIT_WRITE,
}

// spawner starts the container's processes from one OS thread whose
// capabilities are reduced to defaultCaps. Capabilities belong to threads,
// not processes: the init keeps its own (it still has mounts to clean up),
// and every process it starts is forked from the reduced thread, so gets
// no more than defaultCaps whatever it executes.
type spawner struct {
	reqs chan spawnReq
}

type spawnReq struct {
	path  string
	args  []string
	attr  *syscall.ProcAttr
	reply chan spawnResult
}

type spawnResult struct {
	pid int
	err error
}

func newSpawner(cgroup2, noSeccomp bool) (*spawner, error) {
	s := &spawner{reqs: make(chan spawnReq)}
	var filter []unix.SockFilter
	if !noSeccomp {
		var err error
		if filter, err = seccomp.Default(); err != nil {
			return nil, fmt.Errorf("seccomp: %w", err)
		}
	}
	ready := make(chan error)
	go func() {
		// Never unlocked: the thread dies with the goroutine, so its
		// reduced capabilities never serve other goroutines.
		runtime.LockOSThread()
		// The container's cgroup (where the parent has put the init by
		// now) becomes the root of what its processes see.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			ready <- fmt.Errorf("cgroup namespace: %w", err)
			return
		}
		// Mounted from this thread: a cgroup2 mount's root is the
		// mounting thread's cgroup namespace root.
		if cgroup2 {
			if err := mountCgroup2(); err != nil {
				ready <- err
				return
			}
		}
		// Docker's default seccomp profile, installed while the thread
		// still has CAP_SYS_ADMIN: no no_new_privs is needed, so setuid
		// programs (sudo, su) keep working inside.
		if filter != nil {
			if err := seccomp.Install(filter); err != nil {
				ready <- fmt.Errorf("seccomp: %w", err)
				return
			}
		}
		if err := reduceThreadCaps(); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for r := range s.reqs {
			// syscall.ForkExec: the init reaps its children itself, and
			// os.StartProcess would probe for pidfds with a fork first.
			pid, err := syscall.ForkExec(r.path, r.args, r.attr)
			r.reply <- spawnResult{pid, err}
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return s, nil
}

// start is syscall.ForkExec from the reduced thread.
func (s *spawner) start(path string, args []string, attr *syscall.ProcAttr) (int, error) {
	reply := make(chan spawnResult)
	s.reqs <- spawnReq{path, args, attr, reply}
	r := <-reply
	return r.pid, r.err
}

// reduceThreadCaps drops every capability but defaultCaps from the
// calling thread: the bounding set (what exec can give), then its own sets.
func reduceThreadCaps() error {
	keep := map[uintptr]bool{}
	var mask uint64
	for _, c := range defaultCaps {
		keep[c] = true
		mask |= 1 << c
	}
	last := lastCap()
	for c := uintptr(0); c <= last; c++ {
		if keep[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop capability %d: %w", c, err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3, Pid: int32(unix.Gettid())}
	data := [2]unix.CapUserData{
		{Effective: uint32(mask), Permitted: uint32(mask)},
		{Effective: uint32(mask >> 32), Permitted: uint32(mask >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

func lastCap() uintptr {
	data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return unix.CAP_LAST_CAP
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return unix.CAP_LAST_CAP
	}
	return uintptr(n)
}

// mountCgroup2 shows the container its own cgroup, read-only, at
// /sys/fs/cgroup (Docker's cgroupns=private).
func mountCgroup2() error {
	fd, err := unix.Fsopen("cgroup2", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("mount /sys/fs/cgroup: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("mount /sys/fs/cgroup: %w", err)
	}
	attrs := unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("mount /sys/fs/cgroup: %w", err)
	}
	defer unix.Close(mfd)
	// Attached rather than mounted: over the host's /sys of a container
	// in the host's network (bound, with its own cgroup2 mount there),
	// mount(2) refuses the same file system on the same place.
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, "/sys/fs/cgroup", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount /sys/fs/cgroup: %w", err)
	}
	return nil
}
