package devenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/devbox/devbox/devenv/build"
	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/internal/proc"
	"github.com/devbox/devbox/internal/state"
	"github.com/devbox/devbox/rootfs"
	container "github.com/devbox/devbox/runtime"
)

// RunOptions are the parts of `devbox run` the caller decides.
type RunOptions struct {
	Args []string
	TTY  bool
	// Rows and Cols are the terminal's size, with TTY.
	Rows, Cols uint16
	Env        []string // extra environment, e.g. TERM
	// The container's standard files; nil is /dev/null.
	Stdin  *os.File
	Stdout *os.File
	Stderr *os.File
	Build  build.Options
}

// Run starts a one-shot container of the spec's environment with a
// throw-away writable layer. The caller waits on the container; its Wait
// removes the layer.
func Run(ctx context.Context, store *rootfs.Store, s *spec.Spec, o RunOptions) (*container.Container, error) {
	built, err := build.Run(ctx, store, s, o.Build)
	if err != nil {
		return nil, err
	}
	img := built.Image
	uid, gid, err := imageUser(img.Config.User)
	if err != nil {
		return nil, err
	}
	id := newID()
	root := store.Root()
	dir := state.Env(root.Run(id))
	sweepRuns(root.Runs())
	cfg, err := containerConfig(dir, s)
	if err != nil {
		os.RemoveAll(dir.Dir())
		return nil, fmt.Errorf("run: %w", err)
	}
	cfg.ID = id
	cfg.Lower = built.Lower
	cfg.Process = &container.Process{
		Args: o.Args,
		Env:  s.Environ(img.Config, append(append([]string{"HOSTNAME=" + s.Hostname, "HOME=/root"}, s.UpEnv()...), o.Env...)...),
		Cwd:  s.StartDir(img.Config),
		UID:  uid,
		GID:  gid,
		TTY:  o.TTY,
		Rows: o.Rows,
		Cols: o.Cols,
	}
	c, err := container.Start(container.Options{
		Config:    cfg,
		PortMaps:  portMaps(s),
		Limits:    s.Limits(),
		StateRoot: root.Dir(),
		Subnet:    s.Network.Subnet,
		Stdin:     o.Stdin,
		Stdout:    o.Stdout,
		Stderr:    o.Stderr,
	})
	if err != nil {
		os.RemoveAll(dir.Dir())
		return nil, fmt.Errorf("run: %w", err)
	}
	if err := os.WriteFile(dir.File(ownerFile), []byte(proc.Self().String()), 0o600); err != nil {
		c.Signal(os.Kill)
		c.Wait()
		os.RemoveAll(dir.Dir())
		return nil, err
	}
	c.OnCleanup(func() { removeRunDir(dir) })
	return c, nil
}

// ownerFile records which devbox process runs a one-shot container.
const ownerFile = "owner"

// sweepRuns removes the directories of one-shot containers whose devbox
// process died without cleaning up (kill -9): their init died with it.
func sweepRuns(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(state.Env(p).File(ownerFile))
		if err != nil {
			continue // starting right now, or its owner file not yet written
		}
		if !proc.Parse(string(data)).Alive() {
			os.RemoveAll(p)
		}
	}
}

// removeRunDir removes a one-shot container's directory; its layout is
// known, so the common case (nothing written) is a few unlinks rather than
// a walk.
func removeRunDir(dir state.Env) {
	paths := []string{dir.Upper(), filepath.Join(dir.Work(), "work"), dir.Work(), dir.Rootfs(), dir.File(ownerFile)}
	for _, f := range etcFiles {
		paths = append(paths, dir.File(f.name))
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			break
		}
	}
	if os.Remove(dir.Dir()) != nil {
		os.RemoveAll(dir.Dir())
	}
}
