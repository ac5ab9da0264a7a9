package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// cgroupV2 reports whether the host uses the unified hierarchy only. When
// /sys/fs/cgroup is no cgroup mount at all (`ip netns exec` mounts a fresh
// sysfs over /sys, hiding it), /proc/self/cgroup still tells: one "0::"
// line and nothing else.
func cgroupV2() bool {
	if m := fsMagic(cgroupRoot); m == unix.CGROUP2_SUPER_MAGIC {
		return true
	} else if m == unix.TMPFS_MAGIC {
		return false // v1 or hybrid: a tmpfs of per-controller mounts
	}
	data, err := os.ReadFile("/proc/self/cgroup")
	return err == nil && strings.TrimSpace(string(data)) != "" && !strings.Contains(strings.TrimSpace(string(data)), "\n") &&
		strings.HasPrefix(string(data), "0::")
}

func fsMagic(p string) int64 {
	var st unix.Statfs_t
	if unix.Statfs(p, &st) != nil {
		return 0
	}
	return int64(st.Type)
}

var (
	detachedMu sync.Mutex
	detached   = map[string]string{}
)

// cgroup2FS is where this process reaches the unified hierarchy:
// /sys/fs/cgroup, or where the caller's mount namespace hides it (see
// cgroupV2), a detached mount of our own.
func cgroup2FS() (string, error) {
	if fsMagic(cgroupRoot) == unix.CGROUP2_SUPER_MAGIC {
		return cgroupRoot, nil
	}
	return detachedCgroup("cgroup2", "")
}

// cgroupV1FS is where this process reaches the v1 hierarchy of ctrl.
func cgroupV1FS(ctrl string) (string, error) {
	p := filepath.Join(cgroupRoot, ctrl)
	if fsMagic(p) == unix.CGROUP_SUPER_MAGIC {
		return p, nil
	}
	if fsMagic(cgroupRoot) == unix.TMPFS_MAGIC {
		return "", fmt.Errorf("cgroup controller %s is not mounted", ctrl)
	}
	return detachedCgroup("cgroup", ctrl)
}

// detachedCgroup mounts a cgroup hierarchy (fstype cgroup2, or cgroup with
// the v1 controller ctrl, which joins the existing hierarchy) with fsmount
// and no move_mount: in no mount namespace, it leaves nothing behind and
// is reached through its descriptor, open for the process's life. Its root
// is our cgroup namespace's root, as in /proc/self/cgroup.
func detachedCgroup(fstype, ctrl string) (string, error) {
	detachedMu.Lock()
	defer detachedMu.Unlock()
	if p, ok := detached[fstype+ctrl]; ok {
		return p, nil
	}
	fd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("%s: %s is not mounted in this mount namespace, and fsopen failed (needs kernel 5.2): %w", fstype, cgroupRoot, err)
	}
	defer unix.Close(fd)
	if ctrl != "" {
		if err := unix.FsconfigSetFlag(fd, ctrl); err != nil {
			return "", fmt.Errorf("%s %s: %w", fstype, ctrl, err)
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return "", fmt.Errorf("%s %s: create: %w", fstype, ctrl, err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("%s %s: fsmount: %w", fstype, ctrl, err)
	}
	p := fmt.Sprintf("/proc/self/fd/%d", mfd)
	detached[fstype+ctrl] = p
	return p, nil
}

// resolveCgroup maps a cgroup directory recorded under /sys/fs/cgroup to
// where this process reaches it.
func resolveCgroup(dir string) string {
	rel, ok := strings.CutPrefix(dir, cgroupRoot+"/")
	if !ok {
		return dir
	}
	switch fsMagic(cgroupRoot) {
	case unix.CGROUP2_SUPER_MAGIC, unix.TMPFS_MAGIC: // mounted here (v2, v1)
		return dir
	}
	var fs string
	var err error
	if cgroupV2() {
		fs, err = cgroup2FS()
	} else {
		ctrl, rest, _ := strings.Cut(rel, "/")
		fs, err = cgroupV1FS(ctrl)
		rel = rest
	}
	if err != nil {
		return dir
	}
	return filepath.Join(fs, rel)
}
