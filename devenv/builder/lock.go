package builder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/devbox/devbox/devenv/lock"
	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/rootfs"
)

// LockMode is what a build does with the devbox.lock beside its spec.
type LockMode int

const (
	// LockWrite installs what the lock pins and rewrites the lock when
	// the build resolved something else (build, up, run).
	LockWrite LockMode = iota
	// LockLocked installs what the lock pins and fails, with the
	// difference, when the build would change the lock (--locked).
	LockLocked
	// LockUpdate resolves the packages and Node afresh, ignoring the
	// lock, and rewrites it (devbox lock --update).
	LockUpdate
	// LockOff neither reads nor writes a lock.
	LockOff
)

// readPins reads the lock that pins a build of s, if the mode reads one.
func readPins(s *spec.Spec, mode LockMode) (*lock.File, error) {
	if mode == LockOff || mode == LockUpdate || s.File == "" {
		return nil, nil
	}
	pins, err := lock.Read(lock.Path(s.File))
	if err != nil {
		return nil, err
	}
	if pins == nil && mode == LockLocked {
		return nil, fmt.Errorf("--locked: no %s beside %s (devbox lock writes one)", lock.FileName, s.File)
	}
	return pins, nil
}

// checkBase refuses an image base that is not the one the lock pins. A
// tree base (dir:, debootstrap:) is made on each machine and its digest
// differs from one to the next: it is recorded, and a change shows in the
// lock's diff (and fails --locked), but cannot be refused.
func checkBase(pins *lock.File, s *spec.Spec, img *rootfs.Image) error {
	if pins == nil || pins.Base.Ref != s.Base || pins.Base.Digest == img.Digest {
		return nil
	}
	if k := s.BaseRef.Kind; k == rootfs.KindDir || k == rootfs.KindDebootstrap || k == rootfs.KindDockerfile {
		return nil
	}
	return fmt.Errorf("base %s is %s here, %s pins %s: the base changed (devbox lock --update accepts it)", s.Base, img.Digest, lock.FileName, pins.Base.Digest)
}

// Record keys of what a step resolved (rootfs.BuildRecord.Resolved).
const (
	resNodeURL   = "node.url"
	resNodeDig   = "node.digest"
	resNPM       = "npm.version"
	resNPMURL    = "npm.url"
	resNPMDig    = "npm.digest"
	resManager   = "packages.manager"
	resInstalled = "packages.installed"
)

func nodeResolved(n *lock.Node) map[string]string {
	return map[string]string{resNodeURL: n.URL, resNodeDig: n.Digest, resNPM: n.NPM, resNPMURL: n.NPMURL, resNPMDig: n.NPMDigest}
}

func nodeOf(rec rootfs.BuildRecord) *lock.Node {
	r := rec.Resolved
	return &lock.Node{Version: rec.Node, URL: r[resNodeURL], Digest: r[resNodeDig], NPM: r[resNPM], NPMURL: r[resNPMURL], NPMDigest: r[resNPMDig]}
}

func packagesOf(rec rootfs.BuildRecord) *lock.Packages {
	var installed []string
	if s := rec.Resolved[resInstalled]; s != "" {
		installed = strings.Split(s, "\n")
	}
	sort.Strings(installed)
	return &lock.Packages{Manager: rec.Resolved[resManager], Installed: installed}
}

// pinsFor returns the lock's pins if they hold for step st: the lock has
// the step, with the same key. A step the spec changed (another Node
// version asked for, a package added) is resolved afresh.
func pinsFor(pins *lock.File, st Step) *lock.File {
	if _, ok := pins.StepByKey(st.Key); !ok {
		return nil
	}
	return pins
}

// conflicts reports whether a cached step's record disagrees with what
// the lock pins for it: built before the lock (or on another machine's
// lock), it must be built again with the pins.
func conflicts(pins *lock.File, st Step, rec rootfs.BuildRecord) bool {
	if pins = pinsFor(pins, st); pins == nil {
		return false
	}
	switch st.Kind {
	case StepNode:
		return pins.Node != nil && (rec.Node != pins.Node.Version || rec.Resolved[resNodeDig] != pins.Node.Digest)
	case StepPackages:
		return pins.Packages != nil && !slices.Equal(packagesOf(rec).Installed, pins.Packages.Installed)
	}
	return false
}

// lockFile is the lock of a finished build. Layers whose diffID is not
// known yet (built before locks, or just now) are hashed once and the
// result kept in their record.
func (b *Result) lockFile(ctx context.Context, store *rootfs.Store, s *spec.Spec) (*lock.File, error) {
	f := &lock.File{Version: lock.Version, Build: b.Plan.Top(), SourceDateEpoch: b.Plan.Epoch, Base: lock.Base{Ref: s.Base, Digest: b.Image.Digest}}
	for i, st := range b.Plan.Layered() {
		rec := b.records[i]
		if rec.DiffID == "" {
			id, err := rootfs.DiffID(ctx, store.BuildDir(st.Key))
			if err != nil {
				return nil, err
			}
			rec.DiffID = id
			if err := store.UpdateBuild(rec); err != nil {
				return nil, err
			}
		}
		f.Steps = append(f.Steps, lock.Step{Kind: string(st.Kind), Summary: st.Summary, Key: st.Key, DiffID: rec.DiffID})
		switch st.Kind {
		case StepNode:
			f.Node = nodeOf(rec)
		case StepPackages:
			f.Packages = packagesOf(rec)
		}
	}
	return f, nil
}

// ErrLocked is a --locked build that would change devbox.lock.
var ErrLocked = errors.New("the build differs from " + lock.FileName)

// settleLock compares the build with the lock: --locked fails with the
// difference; otherwise a changed lock is written and what changed said.
func settleLock(ctx context.Context, store *rootfs.Store, s *spec.Spec, b *Result, pins *lock.File, o Options) error {
	if o.Lock == LockOff || s.File == "" {
		return nil
	}
	f, err := b.lockFile(ctx, store, s)
	if err != nil {
		return err
	}
	b.Lock = f
	if o.Lock == LockUpdate {
		if pins, err = lock.Read(lock.Path(s.File)); err != nil {
			pins = nil // a broken lock is what --update replaces
		}
	}
	if lock.Equal(pins, f) {
		return nil
	}
	diff := lock.Diff(pins, f)
	if o.Lock == LockLocked {
		return fmt.Errorf("--locked: %w:\n  %s", ErrLocked, strings.Join(diff, "\n  "))
	}
	if err := f.Write(lock.Path(s.File)); err != nil {
		// A spec in a read-only checkout still builds.
		fmt.Fprintf(o.Out, "warning: %s not written: %v\n", lock.Path(s.File), err)
		return nil
	}
	fmt.Fprintf(o.Out, "%s: %d change(s)\n", lock.Path(s.File), len(diff))
	for _, l := range diff {
		fmt.Fprintf(o.Out, "  %s\n", l)
	}
	return nil
}
