package rootfs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/devbox/devbox/internal/idle"
)

// A build cache is a registry repository holding one image per build
// step, tagged with its cache key: the step's layer, and its BuildRecord
// in a config label. Another machine whose plan has the same key pulls
// the layer instead of running the step, and gets the same diffID.

// recordLabel carries a cached step's BuildRecord.
const recordLabel = "dev.devbox.build-record"

// CacheRepository parses a cache's REGISTRY/REPO.
func CacheRepository(repo string) (name.Repository, error) { return name.NewRepository(repo) }

// cacheTag is step key's tag in repo ("sha256-" and the key, 71 of a
// tag's 128 characters).
func cacheTag(repo, key string) (name.Tag, error) {
	r, err := CacheRepository(repo)
	if err != nil {
		return name.Tag{}, err
	}
	return r.Tag("sha256-" + key), nil
}

func cacheOptions(ctx context.Context, opts PullOptions) []remote.Option {
	opts.defaults()
	base := opts.Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithTransport(idle.Transport(base, opts.IdleTimeout)),
	}
}

// PushBuild publishes the committed build step key to the cache repo,
// unless it is there already (reported by pushed false).
func (s *Store) PushBuild(ctx context.Context, repo, key string, opts PullOptions) (pushed bool, err error) {
	tag, err := cacheTag(repo, key)
	if err != nil {
		return false, err
	}
	ropts := cacheOptions(ctx, opts)
	if _, err := remote.Head(tag, ropts...); err == nil {
		return false, nil
	}
	rec, err := s.Build(key)
	if err != nil {
		return false, fmt.Errorf("cache push %s: not built here: %w", key[:12], err)
	}
	if rec.DiffID == "" {
		if rec.DiffID, err = DiffID(ctx, s.BuildDir(key)); err != nil {
			return false, err
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	img, err := Export(ctx, []string{s.BuildDir(key)}, Config{Labels: map[string]string{recordLabel: string(data)}})
	if err != nil {
		return false, err
	}
	if err := remote.Write(tag, img, ropts...); err != nil {
		return false, fmt.Errorf("cache push %s: %w", tag, err)
	}
	return true, nil
}

// CachePull is one step to fetch from a cache repository.
type CachePull struct {
	Key   string
	Lower []string // the layers below the step, top first
	// DiffID is what devbox.lock pins for the step's layer, "" if it
	// pins nothing: a layer whose content is anything else is not used.
	DiffID string
	// Check refuses a record whose fields the caller would take into
	// devbox.lock or print (the record is someone else's data); it runs
	// before anything is downloaded or stored.
	Check func(BuildRecord) error
}

// ErrCacheRefused is a cached step that is not what its key, its record
// or the lock says: it is dropped, and the caller builds the step.
var ErrCacheRefused = errors.New("cache layer refused")

// PullBuild fetches step p.Key from the cache repo into the store, over
// p.Lower, and reports false when the cache has no such step. The cache is
// someone else's input: the record is checked as data, and the layer's
// diffID is the sha256 of its content as it unpacks, which must equal
// what its config and record claim and what the lock pins, or nothing of
// it is kept.
func (s *Store) PullBuild(ctx context.Context, repo string, p CachePull, opts PullOptions) (BuildRecord, bool, error) {
	opts.defaults()
	tag, err := cacheTag(repo, p.Key)
	if err != nil {
		return BuildRecord{}, false, err
	}
	img, err := remote.Image(tag, cacheOptions(ctx, opts)...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return BuildRecord{}, false, nil
	}
	if err != nil {
		return BuildRecord{}, false, fmt.Errorf("cache %s: %w", tag, err)
	}
	rec, layer, diffID, err := cachedImage(img, p)
	if err != nil {
		return BuildRecord{}, false, fmt.Errorf("cache %s: %w", tag, err)
	}
	tmp, err := s.TempDir("cache-")
	if err != nil {
		return rec, false, err
	}
	defer os.RemoveAll(tmp) // a refused layer leaves nothing behind
	dir := filepath.Join(tmp, "layer")
	if err := unpackCached(ctx, layer, diffID, dir, p.Lower, opts); err != nil {
		return rec, false, fmt.Errorf("cache %s: %w: %w", tag, ErrCacheRefused, err)
	}
	rec.DiffID = diffID.String() // now the digest of what unpacked
	if err := s.CommitBuild(dir, rec, false); err != nil {
		return rec, false, err
	}
	stored, err := s.Build(p.Key)
	return stored, err == nil, err
}

// cachedImage reads a cached step's record and its one layer, and refuses
// them unless the record is well-formed and p.Check accepts it, and the
// record, the config and the lock agree on the layer's diffID (which the
// unpack then checks against the content).
func cachedImage(img v1.Image, p CachePull) (BuildRecord, v1.Layer, v1.Hash, error) {
	var rec BuildRecord
	cf, err := img.ConfigFile()
	if err != nil {
		return rec, nil, v1.Hash{}, err
	}
	if err := json.Unmarshal([]byte(cf.Config.Labels[recordLabel]), &rec); err != nil || rec.Key != p.Key {
		return rec, nil, v1.Hash{}, fmt.Errorf("%w: no build record for this step", ErrCacheRefused)
	}
	if err := checkRecord(rec); err != nil {
		return rec, nil, v1.Hash{}, fmt.Errorf("%w: build record: %w", ErrCacheRefused, err)
	}
	if p.Check != nil {
		if err := p.Check(rec); err != nil {
			return rec, nil, v1.Hash{}, fmt.Errorf("%w: build record: %w", ErrCacheRefused, err)
		}
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		return rec, nil, v1.Hash{}, fmt.Errorf("%w: want one layer (%d, %v)", ErrCacheRefused, len(layers), err)
	}
	diffID, err := layers[0].DiffID() // what the config claims
	if err != nil {
		return rec, nil, v1.Hash{}, err
	}
	for _, claim := range []struct{ who, id string }{{"its record", rec.DiffID}, {"devbox.lock", p.DiffID}} {
		if claim.id != "" && claim.id != diffID.String() {
			return rec, nil, v1.Hash{}, fmt.Errorf("%w: its layer is %s, %s says %s", ErrCacheRefused, diffID, claim.who, claim.id)
		}
	}
	return rec, layers[0], diffID, nil
}

// unpackCached unpacks a cached step's layer into dir and completes it
// against the layers below, as a pulled image layer is.
func unpackCached(ctx context.Context, l v1.Layer, diffID v1.Hash, dir string, lower []string, opts PullOptions) error {
	size, _ := l.Size()
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	lim := &layerLimits{max: opts.MaxLayerSize, compressed: size, dir: dir}
	x, _, err := unpackStream(ctx, rc, dir, diffID, lim, opts.Log)
	if err != nil {
		return err
	}
	return fixup(dir, x, lower)
}
