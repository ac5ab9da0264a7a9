package volume

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"

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

// Prepare returns the directory of volume name to mount, making it if it
// does not exist. A new or empty volume is filled by fill (nil: left
// empty); a new one is filled beside and renamed into place, so that a
// killed fill leaves no half-filled volume.
func (s Store) Prepare(name string, fill func(dir string) error) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	v := s.root.Volume(name)
	if err := os.MkdirAll(v.Dir(), 0o700); err != nil {
		return "", err
	}
	unlock, err := lockfile.Lock(v.Lock())
	if err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	defer unlock()
	sweep(v)
	empty, err := isEmpty(v.Data())
	switch {
	case err == nil && !empty:
		return v.Data(), nil
	case err == nil && fill != nil:
		return v.Data(), wrap(name, fill(v.Data()))
	case err == nil:
		return v.Data(), nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	tmp, err := os.MkdirTemp(v.Dir(), "new-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if fill != nil {
		if err := fill(tmp); err != nil {
			return "", wrap(name, err)
		}
	}
	return v.Data(), wrap(name, os.Rename(tmp, v.Data()))
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

func wrap(name string, err error) error {
	if err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	return nil
}

// isEmpty says whether directory dir has no entries.
func isEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
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

// Remove deletes volume name and everything in it.
func (s Store) Remove(name string) error {
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
	// Renamed out of the way first: what a killed removal leaves is not
	// a half-emptied volume the next up would mount.
	gone, err := os.MkdirTemp(v.Dir(), "removed-")
	if err != nil {
		return err
	}
	if err := os.Rename(v.Data(), gone+"/data"); err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	if err := os.RemoveAll(v.Dir()); err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	return nil
}
