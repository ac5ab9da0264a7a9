package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/runtime/userns"
)

// The bind rule, for every host path that enters a container with a user
// namespace (the project, [[mounts]], a devcontainer's workspace and
// mounts, read-only or not), decided in one place, bindMapping:
//
//   - inside the project tree, the tree's host owner (whoever it is, the
//     host's root included) is the login user, and what the login writes
//     there is the owner's on the host; no other host id is mapped;
//   - everywhere else nothing is mapped: host ids outside the container's
//     own range show as nobody and lend no rights (a 0600 file of the
//     host's root cannot be read, its root-only socket not reached).
//
// Every bind is also nodev and nosuid: a set-id file reached through a
// bind never raises a container process's rights.

// bindMapping is how bind src (its real path) is mapped for a container
// with a user namespace: the single owner mapping of the project tree,
// or none.
func bindMapping(real string, p *Project) bool {
	if p == nil || p.Dir == "/" {
		return false
	}
	real = filepath.Clean(real)
	return real == p.Dir || strings.HasPrefix(real, p.Dir+"/")
}

// bind clones m.Source as a detached mount, nodev and nosuid, read-only
// if asked, and with a user namespace maps it by the bind rule. The
// source is opened first and its real path read from that descriptor, so
// the tree cloned is the one the rule judged, whatever symlinks led there.
func (h *hostMounts) bind(m Mount, ns *os.File, c *Config) (*os.File, error) {
	src, err := os.OpenFile(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", m.Source, err)
	}
	defer src.Close()
	real, err := os.Readlink(procFD(int(src.Fd())))
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", m.Source, err)
	}
	fd, err := unix.OpenTree(int(src.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", m.Source, err)
	}
	f := os.NewFile(uintptr(fd), m.Source)
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	// Read-only before idmapped: no moment when the clone is writable
	// through a mapping.
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID}
	if m.Readonly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		return nil, fmt.Errorf("mount %s: attributes: %w", m.Source, err)
	}
	if ns != nil && !m.Canonical && bindMapping(real, c.Project) {
		if err := idmapProject(f, *c.Project, c.UserNS); err != nil {
			if !errors.Is(err, userns.ErrNoIDMap) {
				return nil, fmt.Errorf("mount %s: %w", m.Source, err)
			}
			h.warnings = append(h.warnings, fmt.Sprintf("mount %s: %v: its files show as nobody's", m.Source, err))
		}
	}
	ok = true
	return f, nil
}

// idmapProject idmaps f so that the project's host owner shows as its
// login user, and nothing else is mapped (userns.IDMap.OwnerMap).
func idmapProject(f *os.File, p Project, idmap *userns.IDMap) error {
	uids, gids, err := idmap.OwnerMap(p.HostUID, p.HostGID, p.UID, p.GID)
	if err != nil {
		return err
	}
	ns, err := userns.New(uids, gids)
	if err != nil {
		return err
	}
	defer ns.Close()
	return userns.Idmap(int(f.Fd()), ns)
}
