package devenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/devbox/devbox/rootfs"
	"github.com/devbox/devbox/runtime"
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
	Build  BuildOptions
}

// Run starts a one-shot container of the spec's environment with a
// throw-away writable layer. The caller waits on the container; its Wait
// removes the layer.
func Run(ctx context.Context, store *rootfs.Store, s *Spec, o RunOptions) (*runtime.Container, error) {
	built, err := Build(ctx, store, s, o.Build)
	if err != nil {
		return nil, err
	}
	img := built.Image
	uid, gid, err := imageUser(img.Config.User)
	if err != nil {
		return nil, err
	}
	id := newID()
	dir := filepath.Join(store.Root(), "run", id)
	sweepRuns(filepath.Join(store.Root(), "run"))
	cfg, err := containerDirs(dir, s)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("run: %w", err)
	}
	cfg.ID = id
	cfg.Lower = built.Lower
	cfg.Process = &runtime.Process{
		Args: o.Args,
		Env:  Environ(s, img, append(append([]string{"HOSTNAME=" + s.Hostname, "HOME=/root"}, s.upEnv()...), o.Env...)...),
		Cwd:  Workdir(s, img),
		UID:  uid,
		GID:  gid,
		TTY:  o.TTY,
		Rows: o.Rows,
		Cols: o.Cols,
	}
	c, err := runtime.Start(runtime.Options{
		Config:    cfg,
		PortMaps:  portMaps(s),
		Limits:    limits(s),
		StateRoot: store.Root(),
		Subnet:    s.Network.Subnet,
		Stdin:     o.Stdin,
		Stdout:    o.Stdout,
		Stderr:    o.Stderr,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("run: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(ownerLine(os.Getpid())), 0o600); err != nil {
		c.Signal(os.Kill)
		c.Wait()
		os.RemoveAll(dir)
		return nil, err
	}
	c.OnCleanup(func() { removeRunDir(dir) })
	return c, nil
}

// sweepRuns removes the directories of one-shot containers whose devbox
// process died without cleaning up (kill -9): their init died with it.
func sweepRuns(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(filepath.Join(p, "owner"))
		if err != nil {
			continue // starting right now, or its owner file not yet written
		}
		if !ownerAlive(string(data)) {
			os.RemoveAll(p)
		}
	}
}

// removeRunDir removes a one-shot container's directory; its layout is
// known, so the common case (nothing written) is a few unlinks rather than
// a walk.
func removeRunDir(dir string) {
	for _, name := range []string{"upper", "work/work", "work", "rootfs", "hostname", "hosts", "resolv.conf", "owner"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
			break
		}
	}
	if os.Remove(dir) != nil {
		os.RemoveAll(dir)
	}
}
