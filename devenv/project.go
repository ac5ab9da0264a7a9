package devenv

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/devbox/devbox/internal/state"
	"github.com/devbox/devbox/internal/subid"
	container "github.com/devbox/devbox/runtime"
)

// projectTree is the project tree of a container with a user namespace,
// for the runtime's bind rule: the spec's directory (a devcontainer's
// workspace folder), whose host owner appears inside as the login user
// uid:gid. It refuses a tree owned by an id of devbox's container ranges
// (another environment's files): those ids are not the developer's to
// lend. A tree of the host's root is lent only where no other host user
// can reach it (see private); otherwise it is not lent (nil) and the
// warning says why.
func projectTree(root state.Root, dir string, uid, gid int) (p *container.Project, warning string, err error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, "", fmt.Errorf("project %s: %w", dir, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(real, &st); err != nil {
		return nil, "", fmt.Errorf("project %s: %w", dir, err)
	}
	held, err := subid.New(root).Holds(st.Uid, st.Gid)
	if err != nil {
		return nil, "", err
	}
	if held {
		return nil, "", fmt.Errorf("project %s is owned by host ids %d:%d, which devbox gives to containers (another environment's files?): refusing to lend them to this one", dir, st.Uid, st.Gid)
	}
	if real == "/" {
		return nil, "project /: the whole host is no project; its files show as nobody's", nil
	}
	if st.Uid == 0 && !private(real) {
		return nil, fmt.Sprintf("project %s is the host root's and other host users can reach it: not lent to the login, so its files show as nobody's (a set-id file the login made would be root's for them); chown it to whoever works in it, or keep it in a directory only root enters, as /root", dir), nil
	}
	return &container.Project{Dir: real, Dev: uint64(st.Dev), Ino: st.Ino, HostUID: st.Uid, HostGID: st.Gid, UID: uint32(uid), GID: uint32(gid)}, "", nil
}

// private reports whether no host user but root can reach dir: it or a
// directory above it is root's and lets neither others nor a group other
// than root's search it (/root is 0700).
func private(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		var st syscall.Stat_t
		if syscall.Stat(d, &st) == nil && st.Uid == 0 && st.Mode&0o001 == 0 && (st.Mode&0o010 == 0 || st.Gid == 0) {
			return true
		}
		if d == "/" {
			return false
		}
	}
}

// outsideState refuses a mount whose source lies in devbox's state root,
// or holds it: environments' layers, keys and sockets are no container's
// to reach, whatever its user namespace.
func outsideState(root state.Root, mounts []container.Mount) error {
	stateDir, err := filepath.EvalSymlinks(root.Dir())
	if err != nil {
		return nil // no state root yet: nothing in it to reach
	}
	for _, m := range mounts {
		if m.Type != "" {
			continue // a volume or tmpfs: no host path
		}
		real, err := filepath.EvalSymlinks(m.Source)
		if err != nil {
			return fmt.Errorf("mount %s: %w", m.Source, err)
		}
		if inside(real, stateDir) || inside(stateDir, real) {
			return fmt.Errorf("mount %s: refused, it holds or is inside devbox's state root %s", m.Source, stateDir)
		}
	}
	return nil
}

// hasBinds says whether mounts lend a host path (a project tree is
// decided for those only).
func hasBinds(mounts []container.Mount) bool {
	for _, m := range mounts {
		if !m.Tmpfs && !m.Canonical {
			return true
		}
	}
	return false
}

// inside reports whether path p is dir or below it (both clean and
// absolute).
func inside(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
