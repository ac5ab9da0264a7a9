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
// lend.
func projectTree(root state.Root, dir string, uid, gid int) (*container.Project, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("project %s: %w", dir, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(real, &st); err != nil {
		return nil, fmt.Errorf("project %s: %w", dir, err)
	}
	held, err := subid.New(root).Holds(st.Uid, st.Gid)
	if err != nil {
		return nil, err
	}
	if held {
		return nil, fmt.Errorf("project %s is owned by host ids %d:%d, which devbox gives to containers (another environment's files?): refusing to lend them to this one", dir, st.Uid, st.Gid)
	}
	return &container.Project{Dir: real, HostUID: st.Uid, HostGID: st.Gid, UID: uint32(uid), GID: uint32(gid)}, nil
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

// inside reports whether path p is dir or below it (both clean and
// absolute).
func inside(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
