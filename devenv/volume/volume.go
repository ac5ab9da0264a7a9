package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/devbox/devbox/internal/lockfile"
	"github.com/devbox/devbox/internal/state"
)

// ErrNotFound says a volume does not exist.
var ErrNotFound = errors.New("no such volume")

// CheckName accepts what Docker accepts as a volume's name.
func CheckName(name string) error {
	if !regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`).MatchString(name) {
		return fmt.Errorf("%q is not a volume name (letters, digits and _ . -, a letter or digit first)", name)
	}
	return nil
}

// Store is the volumes of a state root.
type Store struct{ root state.Root }

// New returns the volumes of root.
func New(root state.Root) Store { return Store{root} }

// Prepare returns the directory of volume name to mount, making it and
// filling it by fill (nil: left empty) if it does not exist yet; the fill
// is made beside and renamed into place, so that a failed or killed one
// leaves no volume. An existing volume is never filled again, even empty:
// others may have it mounted, and their processes could turn a path the
// fill writes to into a link. Prepare returns holding the volume's lock
// shared, which release gives back: the caller holds it until its
// container's record names the volume, so that a removal (Remove) waits
// for the record and sees the volume in use.
func (s Store) Prepare(name string, fill func(dir string) error) (dir string, release func(), err error) {
	if err := CheckName(name); err != nil {
		return "", nil, err
	}
	v := s.root.Volume(name)
	if err := os.MkdirAll(s.root.Volumes(), 0o700); err != nil {
		return "", nil, err
	}
	use, err := lockfile.Open(v.Lock())
	if err != nil {
		return "", nil, err
	}
	if err := use.Shared(); err != nil {
		use.Close()
		return "", nil, err
	}
	if err := s.make(v, fill); err != nil {
		use.Close()
		return "", nil, fmt.Errorf("volume %s: %w", name, err)
	}
	return v.Data(), use.Close, nil
}

// make makes v's data directory, filled, if it has none.
func (s Store) make(v state.Volume, fill func(dir string) error) error {
	unlock, err := lockfile.Lock(v.FillLock())
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.MkdirAll(v.Dir(), 0o700); err != nil {
		return err
	}
	sweep(v)
	if _, err := os.Lstat(v.Data()); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmp, err := os.MkdirTemp(v.Dir(), "new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if fill != nil {
		if err := fill(tmp); err != nil {
			return err
		}
	}
	return os.Rename(tmp, v.Data())
}

// sweep removes what a killed fill or removal left in v.
func sweep(v state.Volume) {
	for _, pattern := range []string{"new-*", "removed-*"} {
		left, _ := filepath.Glob(filepath.Join(v.Dir(), pattern))
		for _, p := range left {
			os.RemoveAll(p)
		}
	}
}

// List returns the names of the volumes, sorted.
func (s Store) List() ([]string, error) {
	entries, err := os.ReadDir(s.root.Volumes())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if _, err := os.Stat(s.root.Volume(e.Name()).Data()); e.IsDir() && err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Remove deletes volume name and everything in it, unless users, asked
// while the volume's lock is held alone (no container is being started
// with it), names who uses it or cannot tell.
func (s Store) Remove(name string, users func() ([]string, error)) error {
	if err := CheckName(name); err != nil {
		return err
	}
	v := s.root.Volume(name)
	if _, err := os.Stat(v.Data()); err != nil {
		return fmt.Errorf("volume %s: %w", name, ErrNotFound)
	}
	unlock, err := lockfile.Lock(v.Lock())
	if err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	defer unlock()
	u, err := users()
	if err != nil {
		return fmt.Errorf("volume %s: who uses it: %w", name, err)
	}
	if len(u) > 0 {
		return fmt.Errorf("volume %s is in use by %s: stop it first", name, strings.Join(u, ", "))
	}
	// Renamed out of the way first: what a killed removal leaves is not
	// a half-emptied volume the next up would mount.
	gone, err := os.MkdirTemp(v.Dir(), "removed-")
	if err != nil {
		return err
	}
	if err := os.Rename(v.Data(), filepath.Join(gone, "data")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("volume %s: %w", name, ErrNotFound)
		}
		return fmt.Errorf("volume %s: %w", name, err)
	}
	return os.RemoveAll(v.Dir())
}
