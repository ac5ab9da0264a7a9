package builder

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/internal/state"
)

// PruneCaches empties every RUN --mount=type=cache directory under the
// state root that no build is using (what `docker builder prune` does to
// cache mounts): each is taken with its lock, without waiting, and a busy
// one is left alone. The lock file stays, so that a build waiting on it
// then finds an empty cache rather than a missing directory.
func PruneCaches(root string) (n int, freed int64, err error) {
	dirs, err := os.ReadDir(state.Root(root).BuildCaches())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	} else if err != nil {
		return 0, 0, err
	}
	for _, d := range dirs {
		c := state.BuildCache(filepath.Join(state.Root(root).BuildCaches(), d.Name()))
		size, ok, err := pruneCache(c)
		if err != nil {
			return n, freed, err
		}
		if ok {
			n, freed = n+1, freed+size
		}
	}
	return n, freed, nil
}

// pruneCache empties c if no build holds its lock.
func pruneCache(c state.BuildCache) (size int64, ok bool, err error) {
	lock, err := os.OpenFile(c.Lock(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, false, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); errors.Is(err, unix.EWOULDBLOCK) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, err
	}
	if _, err := os.Lstat(c.Data()); errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	filepath.WalkDir(c.Data(), func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				size += info.Size()
			}
		}
		return nil
	})
	return size, true, os.RemoveAll(c.Data())
}
