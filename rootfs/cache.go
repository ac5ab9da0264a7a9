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

// PullBuild fetches step key from the cache repo into the store, over the
// layers lower (top first), and reports false when the cache has no such
// step. The layer is checked against its diffID as it unpacks, within the
// store's layer limits.
func (s *Store) PullBuild(ctx context.Context, repo, key string, lower []string, opts PullOptions) (BuildRecord, bool, error) {
	opts.defaults()
	var rec BuildRecord
	tag, err := cacheTag(repo, key)
	if err != nil {
		return rec, false, err
	}
	img, err := remote.Image(tag, cacheOptions(ctx, opts)...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("cache %s: %w", tag, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return rec, false, err
	}
	if err := json.Unmarshal([]byte(cf.Config.Labels[recordLabel]), &rec); err != nil || rec.Key != key {
		return rec, false, fmt.Errorf("cache %s: no build record for this step", tag)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		return rec, false, fmt.Errorf("cache %s: want one layer (%v)", tag, err)
	}
	diffID, err := layers[0].DiffID()
	if err != nil {
		return rec, false, err
	}
	tmp, err := s.TempDir("cache-")
	if err != nil {
		return rec, false, err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "layer")
	if err := unpackCached(ctx, layers[0], diffID, dir, lower, opts); err != nil {
		return rec, false, fmt.Errorf("cache %s: %w", tag, err)
	}
	rec.DiffID = diffID.String()
	if err := s.CommitBuild(dir, rec, false); err != nil {
		return rec, false, err
	}
	stored, err := s.Build(key)
	return stored, err == nil, err
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
