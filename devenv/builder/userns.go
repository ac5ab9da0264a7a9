package builder

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/internal/state"
	"github.com/devbox/devbox/runtime/userns"
)

// useUserNS reports whether containers over lower get a user namespace:
// when the spec does not opt out and the host can; the opt-out, and why
// the host cannot, are printed as security warnings. Already in a user
// namespace (rootless, or a caller in a container), the containers' root
// is that namespace's, not the host's, and the opt-out changes nothing.
func useUserNS(root state.Root, s *spec.Spec, lower []string, out io.Writer) bool {
	if !userns.Initial() {
		return false
	}
	if !s.UserNS() {
		fmt.Fprintln(out, "security: user namespaces are off, container root is the host's root: [security] userns = false")
		return false
	}
	if err := checkUserNS(root, probeDir(root, lower)); err != nil {
		fmt.Fprintf(out, "security: user namespaces are off, container root is the host's root: %v\n", err)
		return false
	}
	return true
}

// probeDir is the directory whose file system the probe checks: the
// bottom layer, or for a target with no image layer of its own (FROM
// scratch, FROM an earlier stage) the build-layer directory, where its
// layers will be (the store makes it when it opens).
func probeDir(root state.Root, lower []string) string {
	if len(lower) > 0 {
		return lower[len(lower)-1]
	}
	return root.Builds()
}

// checkUserNS is userns.Check of the layer dir, whose success is kept
// under the state root for this kernel and this file system: the probe
// forks a process, a millisecond of every build and run.
func checkUserNS(root state.Root, dir string) error {
	var u unix.Utsname
	var st unix.Stat_t
	if err := unix.Uname(&u); err != nil {
		return err
	}
	if err := unix.Stat(dir, &st); err != nil {
		return err
	}
	stamp := fmt.Sprintf("%s %d\n", unix.ByteSliceToString(u.Release[:]), st.Dev)
	cache := filepath.Join(root.IDs(), "idmap-ok")
	if data, err := os.ReadFile(cache); err == nil && string(data) == stamp {
		return nil
	}
	if err := userns.Check(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(root.IDs(), 0o700); err == nil {
		os.WriteFile(cache, []byte(stamp), 0o600) // only a cache
	}
	return nil
}
