package runtime

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/runtime/userns"
)

// mount is the detached mount m asks for: a tmpfs, a bind of devbox's
// own canonical tree (idmapped as the layers are), or a bind by the bind
// rule.
func (h *hostMounts) mount(m Mount, ns *os.File, c *Config) (*os.File, error) {
	if m.Tmpfs {
		return tmpfs(m, c.UserNS)
	}
	f, err := h.bind(m, ns, c)
	if err != nil || !m.Canonical || ns == nil {
		return f, err
	}
	// Still detached: the clone is idmapped before anyone can reach it.
	if err := userns.Idmap(int(f.Fd()), ns); err != nil {
		f.Close()
		return nil, fmt.Errorf("mount %s: %w", m.Source, err)
	}
	return f, nil
}

// tmpfs is a detached tmpfs for m, its root owned by the container's
// root (the range's first ids with a user namespace), mode 1777 as a
// tmpfs's root is by default. BuildKit's (solver/llbsolver/mounts/
// mount.go, tmpfsMount) is nosuid with its size and no mode; devbox's
// is nodev too, as every mount it gives a container.
func tmpfs(m Mount, ids *userns.IDMap) (*os.File, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("tmpfs %s: %w", m.Target, err)
	}
	defer unix.Close(fs)
	opts := map[string]string{"mode": "1777"}
	if m.Size > 0 {
		opts["size"] = strconv.FormatInt(m.Size, 10)
	}
	if ids != nil {
		opts["uid"], opts["gid"] = strconv.FormatUint(uint64(ids.UID), 10), strconv.FormatUint(uint64(ids.GID), 10)
	}
	for k, v := range opts {
		if err := unix.FsconfigSetString(fs, k, v); err != nil {
			return nil, fmt.Errorf("tmpfs %s: %s=%s: %w", m.Target, k, v, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return nil, fmt.Errorf("tmpfs %s: %w", m.Target, err)
	}
	attr := unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	if m.Readonly {
		attr |= unix.MOUNT_ATTR_RDONLY
	}
	fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return nil, fmt.Errorf("tmpfs %s: %w", m.Target, err)
	}
	return os.NewFile(uintptr(fd), "tmpfs:"+m.Target), nil
}
