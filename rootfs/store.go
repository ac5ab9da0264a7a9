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
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/devbox/devbox/internal/lockfile"
	"github.com/devbox/devbox/internal/state"
)

// Store is the content-addressed layer store under a state root (its
// layers/, images/, builds/, tmp/ and locks/; see internal/state).
//
// Layers are keyed by ChainID, not diffID: how a layer unpacks (the owner
// and mode of a directory it implies but does not contain) depends on the
// layers below it, so the same diff over different parents is a different
// directory.
type Store struct {
	root state.Root
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
	Env []string `json:"env,omitempty"`
	// Labels are the image's; a devcontainer.json merges the Dev
	// Container metadata label under its own config.
	Labels       map[string]string `json:"labels,omitempty"`
	ExposedPorts []string          `json:"exposed_ports,omitempty"` // "22/tcp"
	WorkingDir   string            `json:"working_dir,omitempty"`
	User         string            `json:"user,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	// The rest devbox does not act on, but a Dockerfile built FROM the
	// image inherits them (SHELL is the shell its RUN lines run under,
	// ONBUILD its first instructions) and an exported image carries them,
	// as BuildKit's would.
	Author      string           `json:"author,omitempty"` // MAINTAINER
	Shell       []string         `json:"shell,omitempty"`
	OnBuild     []string         `json:"on_build,omitempty"`
	Healthcheck *v1.HealthConfig `json:"healthcheck,omitempty"`
	StopSignal  string           `json:"stop_signal,omitempty"`
	Volumes     []string         `json:"volumes,omitempty"`
}

// Open opens the store at root, creating its directories.
func Open(root string) (*Store, error) {
	r := state.Root(root)
	for _, d := range []string{r.Layers(), r.Images(), r.Builds(), r.Tmp(), r.Locks()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	return &Store{root: r}, nil
}

// OpenExisting opens the store at root if there is one, without creating
// anything; a missing store is an empty one (nil Store is valid to query).
func OpenExisting(root string) (*Store, error) {
	r := state.Root(root)
	if _, err := os.Stat(r.Layers()); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return &Store{root: r}, nil
}

// Root is the state root the store lives in.
func (s *Store) Root() state.Root { return s.root }

// LayerDir is where the layer with chainID is unpacked.
func (s *Store) LayerDir(chainID string) string { return s.root.Layer(chainID) }

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

func imageFile(root state.Root, ref Ref) string {
	sum := sha256.Sum256([]byte(ref.String()))
	return filepath.Join(root.Images(), hex.EncodeToString(sum[:16])+".json")
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
	files, err := filepath.Glob(filepath.Join(s.root.Images(), "*.json"))
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
	return writeJSON(s.root.Tmp(), imageFile(s.root, ref), img)
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
	return lockfile.Lock(s.root.Lock(name))
}

// Enter marks the start of work that adds to the store (a pull, a build):
// it holds the gc lock shared, so that prune waits for it. When nobody else
// is at work, it first sweeps tmp/ of what killed runs left there.
func (s *Store) Enter() (leave func(), err error) {
	l, err := lockfile.Open(s.root.Lock("gc"))
	if err != nil {
		return nil, err
	}
	if l.TryExclusive() {
		s.sweepTmp()
	}
	// Converting to shared keeps the lock held throughout.
	if err := l.Shared(); err != nil {
		l.Close()
		return nil, err
	}
	return l.Close, nil
}

// sweepTmp removes everything in tmp/; only call it with the gc lock held
// exclusively.
func (s *Store) sweepTmp() {
	entries, _ := os.ReadDir(s.root.Tmp())
	for _, e := range entries {
		os.RemoveAll(filepath.Join(s.root.Tmp(), e.Name()))
	}
}

// BuildDir is where the build-step layer with key is kept.
func (s *Store) BuildDir(key string) string { return s.root.Build(key) }

// HasBuild reports whether the build step with key is committed.
func (s *Store) HasBuild(key string) bool {
	if s == nil {
		return false
	}
	_, err := os.Stat(s.BuildDir(key) + ".json")
	return err == nil
}

// Prune deletes every layer that neither a stored image nor a build step
// stands on, and leftovers in tmp/. It returns the chain IDs it deleted
// and the bytes freed.
func (s *Store) Prune() (removed []string, freed int64, err error) {
	unlock, err := s.lock("gc")
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	used, err := s.layersInUse()
	if err != nil {
		return nil, 0, err
	}
	entries, err := os.ReadDir(s.root.Layers())
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
		if err := os.Remove(s.root.Layer(id) + ".json"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, freed, err
		}
		if err := os.RemoveAll(s.root.Layer(id)); err != nil {
			return removed, freed, err
		}
		removed = append(removed, "sha256:"+id)
		freed += li.Size
	}
	// Nothing is unpacking while we hold the gc lock exclusively.
	s.sweepTmp()
	return removed, freed, nil
}

// layersInUse are the bare chain IDs that stored images and build steps
// stand on.
func (s *Store) layersInUse() (map[string]bool, error) {
	used := map[string]bool{}
	mark := func(ids []string) {
		for _, id := range ids {
			used[strings.TrimPrefix(id, "sha256:")] = true
		}
	}
	imgs, err := s.Images()
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		mark(img.Layers)
	}
	recs, err := filepath.Glob(filepath.Join(s.root.Builds(), "*.json"))
	if err != nil {
		return nil, err
	}
	for _, f := range recs {
		var rec BuildRecord
		if err := readJSON(f, &rec); err != nil {
			return nil, fmt.Errorf("prune: %w", err) // keep everything rather than guess
		}
		mark(rec.BaseLayers)
	}
	return used, nil
}

// TempDir makes a directory in tmp/ for unfinished work (a build step's
// layer); a killed devbox leaves it for the next sweep.
func (s *Store) TempDir(prefix string) (string, error) {
	return os.MkdirTemp(s.root.Tmp(), prefix)
}

// BuildRecord is what builds/<key>.json keeps of a build step.
type BuildRecord struct {
	Key     string        `json:"key"`
	Kind    string        `json:"kind"`
	Summary string        `json:"summary"`
	Built   time.Time     `json:"built"`
	Took    time.Duration `json:"took"`
	// Node is the exact Node.js version a node step installed.
	Node string `json:"node,omitempty"`
	// Resolved is what else the step resolved, for devbox.lock: where
	// Node and npm came from and their digests, the packages installed.
	Resolved map[string]string `json:"resolved,omitempty"`
	// DiffID is the digest of the step's layer as a tar (what push and a
	// cache publish), computed when the lock first needs it.
	DiffID string `json:"diff_id,omitempty"`
	// BaseLayers are the image layers the step was built on, which prune
	// keeps while the step exists.
	BaseLayers []string `json:"base_layers"`
}

// Build returns the record of the committed build step key.
func (s *Store) Build(key string) (BuildRecord, error) {
	var rec BuildRecord
	err := readJSON(s.BuildDir(key)+".json", &rec)
	return rec, err
}

// UpdateBuild rewrites the record of a committed build step.
func (s *Store) UpdateBuild(rec BuildRecord) error {
	if !s.HasBuild(rec.Key) {
		return fmt.Errorf("build %s: not committed", rec.Key)
	}
	return writeJSON(s.root.Tmp(), s.BuildDir(rec.Key)+".json", rec)
}

// CommitBuild moves a finished build step's layer dir into place under
// rec.Key, with its record; until the record is written the step counts
// as not built, so a build killed at any point reruns cleanly. A step
// already built under the key (by a concurrent build) is kept, unless
// replace: a step built again on purpose (--no-cache, a lock's pins)
// replaces it, the old layer moved out of the way first. An environment
// running over the old layer keeps the files it has open.
func (s *Store) CommitBuild(dir string, rec BuildRecord, replace bool) error {
	key := rec.Key
	final := s.BuildDir(key)
	unlock, err := s.lock("build-" + key)
	if err != nil {
		return err
	}
	defer unlock()
	if s.HasBuild(key) && !replace { // a concurrent build made the same step
		return os.RemoveAll(dir)
	}
	// The record goes first: a kill from here on leaves the step unbuilt.
	if err := os.Remove(final + ".json"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if _, err := os.Lstat(final); err == nil {
		old, err := s.TempDir("replaced-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(old)
		if err := os.Rename(final, filepath.Join(old, "layer")); err != nil {
			return err
		}
	}
	if err := os.Rename(dir, final); err != nil {
		return err
	}
	return writeJSON(s.root.Tmp(), final+".json", rec)
}
