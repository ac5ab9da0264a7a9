package devenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/devbox/devbox/devenv/builder"
	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/internal/proc"
	"github.com/devbox/devbox/internal/state"
	"github.com/devbox/devbox/internal/subid"
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
	Build  builder.Options
}

// Run starts a one-shot container of the spec's environment with a
// throw-away writable layer. The caller waits on the container; its Wait
// removes the layer.
func Run(ctx context.Context, store *rootfs.Store, s *spec.Spec, o RunOptions) (c *container.Container, err error) {
	container.WarmCgroupMoves()
	built, err := builder.Run(ctx, store, s, o.Build)
	if err != nil {
		return nil, err
	}
	s = built.Spec
	img := built.Image
	uid, gid, err := builder.LookupUser(built.Lower, img.Config.User)
	if err != nil {
		return nil, fmt.Errorf("image user: %w", err)
	}
	id := newID()
	root := store.Root()
	dir := state.Env(root.Run(id))
	sweepRuns(root.Runs())
	rec := &runRecord{Owner: proc.Self().String(), Volumes: volumeNames(s.Mounts)}
	if err := makeRunDir(store, dir, rec); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	// The run's record named its volumes already (makeRunDir).
	cfg, releaseVolumes, err := containerConfig(root, dir, s, built.Lower)
	releaseVolumes()
	if err != nil {
		os.RemoveAll(dir.Dir())
		return nil, fmt.Errorf("run: %w", err)
	}
	cfg.ID = id
	if built.UserNS {
		release, err := runUserNS(&cfg, root, s, uid, gid, o.Build.Out)
		if err != nil {
			os.RemoveAll(dir.Dir())
			return nil, fmt.Errorf("run: %w", err)
		}
		defer func() {
			if c == nil {
				release()
			} else {
				c.OnCleanup(release)
			}
		}()
	}
	cfg.Process = &container.Process{
		Args: o.Args,
		// HOME and the groups of the image's user, as docker run gives
		// them (runc, from the image's /etc/passwd and /etc/group).
		Env:    s.Environ(img.Config, append(append([]string{"HOSTNAME=" + s.Hostname, "HOME=" + runHome(img.Config, built.Lower, uid)}, s.UpEnv()...), o.Env...)...),
		Cwd:    s.StartDir(img.Config),
		UID:    uid,
		GID:    gid,
		Groups: builder.SupplementaryGroups(built.Lower, img.Config.User),
		TTY:    o.TTY,
		Rows:   o.Rows,
		Cols:   o.Cols,
	}
	c, err = container.Start(container.Options{
		Config:   cfg,
		PortMaps: s.PortMaps,
		Limits:   s.Limits(),
		Subnet:   s.Network.Subnet,
		Stdin:    o.Stdin,
		Stdout:   o.Stdout,
		Stderr:   o.Stderr,
		Record: func(_ int, l container.Leftovers) error {
			rec.Leftovers = l
			return writeJSON(dir.File(ownerFile), rec)
		},
	})
	if err != nil {
		os.RemoveAll(dir.Dir())
		return nil, fmt.Errorf("run: %w", err)
	}
	printWarnings(o.Build.Out, c.Warnings)
	c.OnCleanup(func() { removeRunDir(dir) })
	return c, nil
}

// makeRunDir makes a one-shot container's directory with its owner
// record in it from the start: it is made in tmp/ and renamed into run/,
// so that whenever this devbox is killed, what run/ holds names its owner
// (the next sweep knows the container is gone) and what tmp/ holds is
// swept as any unfinished work.
func makeRunDir(store *rootfs.Store, dir state.Env, rec *runRecord) error {
	leave, err := store.Enter()
	if err != nil {
		return err
	}
	defer leave()
	tmp, err := store.TempDir("run-")
	if err != nil {
		return err
	}
	if err := writeJSON(state.Env(tmp).File(ownerFile), rec); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir.Dir()), 0o700); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir.Dir()); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return nil
}

// runUserNS gives a one-shot container a range of its own for its run
// and, with mounts, the project tree lent to the image's user uid:gid;
// release gives the range back.
func runUserNS(cfg *container.Config, root state.Root, s *spec.Spec, uid, gid int, out io.Writer) (release func(), err error) {
	m, release, err := subid.New(root).Transient()
	if err != nil {
		return nil, err
	}
	cfg.UserNS = &m
	if !hasBinds(cfg.Mounts) {
		return release, nil
	}
	var warning string
	if cfg.Project, warning, err = projectTree(root, s.Dir, uid, gid); warning != "" {
		printWarnings(out, []string{warning})
	}
	if err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// runHome is HOME as docker run gives it: the image's ENV HOME, else the
// user's home in /etc/passwd (runc sets it only when unset).
func runHome(cfg rootfs.Config, lower []string, uid int) string {
	for _, kv := range cfg.Env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			return v
		}
	}
	return builder.HomeOf(lower, uid)
}

// runRecord is run/ID/owner: the devbox process that runs the one-shot
// container (its init dies with it) and what the container holds on the
// host, for the sweep after a devbox that was killed.
type runRecord struct {
	Owner     string              `json:"owner"`
	Leftovers container.Leftovers `json:"leftovers"`
	// Volumes are the named volumes it mounts: not removed while it runs.
	Volumes []string `json:"volumes,omitempty"`
}

// ownerFile records which devbox process runs a one-shot container.
const ownerFile = "owner"

// runVolumes are the named volumes of the one-shot containers whose
// devbox still runs, each with the word "run" as the user of it.
func runVolumes(dir string) map[string][]string {
	users := map[string][]string{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		rec, err := readRunRecord(filepath.Join(dir, e.Name()))
		if err != nil || !proc.Parse(rec.Owner).Alive() {
			continue
		}
		for _, v := range rec.Volumes {
			users[v] = append(users[v], "a devbox run ("+e.Name()+")")
		}
	}
	return users
}

// readRunRecord reads the owner record of the one-shot container
// directory dir.
func readRunRecord(dir string) (runRecord, error) {
	var rec runRecord
	data, err := os.ReadFile(state.Env(dir).File(ownerFile))
	if err != nil {
		return rec, err
	}
	if json.Unmarshal(data, &rec) != nil {
		rec.Owner = string(data) // written before records were JSON
	}
	return rec, nil
}

// sweepRuns removes the directories of one-shot containers whose devbox
// process died without cleaning up (kill -9): their init died with it.
func sweepRuns(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		rec, err := readRunRecord(p)
		if err != nil {
			// A directory from before it was made whole in tmp/
			// (makeRunDir), or being made right now by an older devbox:
			// only an old one is garbage.
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Minute {
				os.RemoveAll(p)
			}
			continue
		}
		if !proc.Parse(rec.Owner).Alive() {
			container.Reclaim(rec.Leftovers)
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
