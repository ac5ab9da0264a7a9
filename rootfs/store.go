package rootfs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Store is the content-addressed layer store under a state root:
//
//	layers/<chainID>/      a layer unpacked in overlay form, never changed once in place
//	layers/<chainID>.json  its LayerInfo
//	images/<id>.json       an Image: reference → manifest digest, config, layer chain
//	builds/                build-step layers (see the devenv package)
//	tmp/                   staging; anything here is unfinished work
//	locks/                 flock files
//
// Layers are keyed by ChainID, not diffID: how a layer unpacks (the owner
// and mode of a directory it implies but does not contain) depends on the
// layers below it, so the same diff over different parents is a different
// directory.
type Store struct {
	root string
}

// LayerInfo describes an unpacked layer.
type LayerInfo struct {
	ChainID  string    `json:"chain_id"`
	DiffID   string    `json:"diff_id"`
	Parent   string    `json:"parent,omitempty"`
	Size     int64     `json:"size"` // bytes of the uncompressed tar
	Unpacked time.Time `json:"unpacked"`
}

// Image is what the store keeps of a pulled or imported image.
type Image struct {
	Ref     string    `json:"ref"`
	Digest  string    `json:"digest"` // manifest digest, or of the content for dir: and debootstrap:
	Config  Config    `json:"config"`
	Layers  []string  `json:"layers"` // chain IDs, bottom first
	DiffIDs []string  `json:"diff_ids"`
	Size    int64     `json:"size"` // compressed bytes as pulled
	Pulled  time.Time `json:"pulled"`
}

// Config is the part of an image config an environment uses.
type Config struct {
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
}

// Open opens the store at root, creating its directories.
func Open(root string) (*Store, error) {
	for _, d := range []string{"layers", "images", "builds", "tmp", "locks"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	return &Store{root: root}, nil
}

// OpenExisting opens the store at root if there is one, without creating
// anything; a missing store is an empty one (nil Store is valid to query).
func OpenExisting(root string) (*Store, error) {
	if _, err := os.Stat(filepath.Join(root, "layers")); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return &Store{root: root}, nil
}

// Root is the state root the store lives in.
func (s *Store) Root() string { return s.root }

// LayerDir is where the layer with chainID is unpacked.
func (s *Store) LayerDir(chainID string) string {
	return filepath.Join(s.root, "layers", strings.TrimPrefix(chainID, "sha256:"))
}

// HasLayer reports whether chainID is unpacked and complete.
func (s *Store) HasLayer(chainID string) bool {
	if s == nil {
		return false
	}
	_, err := os.Stat(s.LayerDir(chainID) + ".json")
	return err == nil
}

// Layer returns the info of an unpacked layer.
func (s *Store) Layer(chainID string) (LayerInfo, error) {
	var li LayerInfo
	err := readJSON(s.LayerDir(chainID)+".json", &li)
	return li, err
}

func imageFile(root string, ref Ref) string {
	sum := sha256.Sum256([]byte(ref.String()))
	return filepath.Join(root, "images", hex.EncodeToString(sum[:16])+".json")
}

// Image returns the stored image for ref, or fs.ErrNotExist.
func (s *Store) Image(ref Ref) (*Image, error) {
	if s == nil {
		return nil, fs.ErrNotExist
	}
	var img Image
	if err := readJSON(imageFile(s.root, ref), &img); err != nil {
		return nil, err
	}
	return &img, nil
}

// BaseID is the digest of the stored image for ref, or "" if it is not
// pulled.
func (s *Store) BaseID(ref Ref) string {
	img, err := s.Image(ref)
	if err != nil {
		return ""
	}
	return img.Digest
}

// Images lists every stored image, newest first.
func (s *Store) Images() ([]*Image, error) {
	if s == nil {
		return nil, nil
	}
	files, err := filepath.Glob(filepath.Join(s.root, "images", "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, f := range files {
		var img Image
		if err := readJSON(f, &img); err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		out = append(out, &img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pulled.After(out[j].Pulled) })
	return out, nil
}

// putImage records img under ref, atomically.
func (s *Store) putImage(ref Ref, img *Image) error {
	return writeJSON(filepath.Join(s.root, "tmp"), imageFile(s.root, ref), img)
}

// RemoveImage forgets the image for ref; its layers stay until prune.
func (s *Store) RemoveImage(ref Ref) error {
	err := os.Remove(imageFile(s.root, ref))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("image %s: not in the store", ref)
	}
	return err
}

// LowerDirs are the layer directories of img, top first, as overlayfs
// wants them.
func (s *Store) LowerDirs(img *Image) []string {
	dirs := make([]string, len(img.Layers))
	for i, id := range img.Layers {
		dirs[len(img.Layers)-1-i] = s.LayerDir(id)
	}
	return dirs
}

// ChainIDs computes the chain IDs of a stack of diffIDs, bottom first.
func ChainIDs(diffIDs []v1.Hash) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d.String()
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1] + " " + d.String()))
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeJSON writes v to path atomically: a reader sees the old file or the
// whole new one, even if devbox is killed mid-write.
func writeJSON(tmpDir, path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(tmpDir, "json-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// lock takes an exclusive flock on locks/name, waiting for it.
func (s *Store) lock(name string) (unlock func(), err error) {
	return s.flock(name, syscall.LOCK_EX)
}

// enter marks the start of work that adds to the store (a pull, a build):
// it holds the gc lock shared, so that prune waits for it. When nobody else
// is at work, it first sweeps tmp/ of what killed runs left there.
func (s *Store) enter() (leave func(), err error) {
	f, err := os.OpenFile(filepath.Join(s.root, "locks", "gc.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		s.sweepTmp()
	}
	// Converting to shared keeps the lock held throughout.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock gc: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// sweepTmp removes everything in tmp/; only call it with the gc lock held
// exclusively.
func (s *Store) sweepTmp() {
	entries, _ := os.ReadDir(filepath.Join(s.root, "tmp"))
	for _, e := range entries {
		os.RemoveAll(filepath.Join(s.root, "tmp", e.Name()))
	}
}

func (s *Store) flock(name string, how int) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(s.root, "locks", name+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// BuildDir is where the build-step layer with key is kept.
func (s *Store) BuildDir(key string) string {
	return filepath.Join(s.root, "builds", key)
}

// HasBuild reports whether the build step with key is committed.
func (s *Store) HasBuild(key string) bool {
	if s == nil {
		return false
	}
	_, err := os.Stat(s.BuildDir(key) + ".json")
	return err == nil
}

// Prune deletes every layer that no stored image uses and that is not in
// keep (the layers builds and environments use), and leftovers in tmp/.
// It returns the chain IDs it deleted and the bytes freed.
func (s *Store) Prune(keep []string) (removed []string, freed int64, err error) {
	unlock, err := s.lock("gc")
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	used := map[string]bool{}
	for _, id := range keep {
		used[strings.TrimPrefix(id, "sha256:")] = true
	}
	imgs, err := s.Images()
	if err != nil {
		return nil, 0, err
	}
	for _, img := range imgs {
		for _, id := range img.Layers {
			used[strings.TrimPrefix(id, "sha256:")] = true
		}
	}
	entries, err := os.ReadDir(filepath.Join(s.root, "layers"))
	if err != nil {
		return nil, 0, err
	}
	for _, e := range entries {
		id := strings.TrimSuffix(e.Name(), ".json")
		if used[id] || !e.IsDir() {
			continue
		}
		// The marker goes first: a layer without it is never used, so an
		// interrupted prune leaves only garbage, not a half layer.
		li, _ := s.Layer("sha256:" + id)
		if err := os.Remove(filepath.Join(s.root, "layers", id+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, freed, err
		}
		if err := os.RemoveAll(filepath.Join(s.root, "layers", id)); err != nil {
			return removed, freed, err
		}
		removed = append(removed, "sha256:"+id)
		freed += li.Size
	}
	// Nothing is unpacking while we hold the gc lock exclusively.
	s.sweepTmp()
	return removed, freed, nil
}

// TempDir makes a directory in tmp/ for unfinished work (a build step's
// layer); a killed devbox leaves it for the next sweep.
func (s *Store) TempDir(prefix string) (string, error) {
	return os.MkdirTemp(filepath.Join(s.root, "tmp"), prefix)
}

// Enter marks the start of work that adds to the store; see enter.
func (s *Store) Enter() (leave func(), err error) { return s.enter() }

// CommitBuild moves a finished build step's layer dir into place as key,
// with its record; until the record is written the step counts as not
// built, so a build killed at any point reruns cleanly.
func (s *Store) CommitBuild(key, dir string, record any) error {
	final := s.BuildDir(key)
	unlock, err := s.lock("build-" + key)
	if err != nil {
		return err
	}
	defer unlock()
	if s.HasBuild(key) { // a concurrent build made the same step
		return os.RemoveAll(dir)
	}
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	if err := os.Rename(dir, final); err != nil {
		return err
	}
	return writeJSON(filepath.Join(s.root, "tmp"), final+".json", record)
}
