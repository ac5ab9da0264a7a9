package builder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/devenv/spec/dockerfile"
	container "github.com/devbox/devbox/runtime"
)

// cache is a RUN --mount=type=cache's directory in the state root, kept
// between builds and never part of a layer. It is BuildKit's cache by id,
// or by id and what it starts from (solver/llbsolver/mounts/mount.go,
// getRefCacheDir keys id:base): a stage's tree (from=), or a directory
// of another mode or owner (uid=, gid=, mode=; convert_runmount.go's
// setCacheUIDGID is such a base).
//
// Sharing as BuildKit's: shared caches are used at once by every build;
// a locked one by one RUN at a time; a private one by one RUN, others
// getting a fresh directory meanwhile. Users of a cache hold its lock
// file, shared or not, for the run.
func (rm *runMounter) cache(i int, m dockerfile.Mount) (*container.Mount, error) {
	key := m.ID
	switch {
	case m.FromStage != nil:
		key += ":stage " + rm.b.Plan.Steps[rm.st.Mounts[i]].Key + " " + m.Source
	case m.Mode != 0o755 || m.UID != 0 || m.GID != 0:
		key += fmt.Sprintf(":mkdir %o %d:%d", m.Mode, m.UID, m.GID)
	}
	c := rm.root.BuildCache(key)
	if err := os.MkdirAll(c.Dir(), 0o700); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(c.Lock(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	rm.cleanup = append(rm.cleanup, func() { lock.Close() })
	how := unix.LOCK_SH
	if m.Sharing != "shared" {
		how = unix.LOCK_EX
	}
	if m.Sharing == "private" {
		how |= unix.LOCK_NB
	}
	data := c.Data()
	if err := unix.Flock(int(lock.Fd()), how); errors.Is(err, unix.EWOULDBLOCK) {
		// In use: this RUN gets one of its own, thrown away after.
		if data, err = rm.mountDir("cache", i); err != nil {
			return nil, err
		}
		if err := os.Remove(data); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("lock %s: %w", c.Lock(), err)
	}
	if err := rm.initCache(i, m, data); err != nil {
		return nil, err
	}
	return &container.Mount{Source: data, Target: m.Target, Readonly: m.ReadOnly, Canonical: true}, nil
}

// initCache makes the cache directory data if it is not there yet: a
// copy of its from= source, else an empty directory of its mode and
// owner. It is made beside and renamed into place, so that a build
// sharing it sees it whole or not at all.
func (rm *runMounter) initCache(i int, m dockerfile.Mount, data string) error {
	if _, err := os.Lstat(data); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(data), "new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if m.FromStage != nil {
		src, err := rm.copySource(i, m, tmp)
		if err != nil {
			return err
		}
		if src != tmp {
			return fmt.Errorf("from=%s source=%s is not a directory", m.From, m.Source)
		}
	} else {
		if err := os.Chown(tmp, int(m.UID), int(m.GID)); err != nil {
			return err
		}
		if err := os.Chmod(tmp, os.FileMode(m.Mode&0o7777)); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, data); err != nil {
		if _, statErr := os.Lstat(data); statErr == nil {
			return nil // made meanwhile by another build
		}
		return err
	}
	return nil
}
