package rootfs

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/devbox/devbox/internal/testenv"
)

// cacheImage is a cache repository's image for a step: layer, rec in the
// record label and a config whose diff_ids say claim (the truth if "").
func cacheImage(t *testing.T, layer v1.Layer, claim string, rec BuildRecord) v1.Image {
	t.Helper()
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer})
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	data, _ := json.Marshal(rec)
	cf.Config.Labels = map[string]string{recordLabel: string(data)}
	if claim != "" {
		cf.RootFS.DiffIDs = []v1.Hash{v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(claim, "sha256:")}}
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

func diffIDOf(t *testing.T, l v1.Layer) string {
	t.Helper()
	d, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestPullBuildVerifies: a cached step is used only when the sha256 of its
// content, as it unpacks, is what its config, its record and the lock
// say, and its record is data; anything else is refused and leaves nothing
// in the store.
func TestPullBuildVerifies(t *testing.T) {
	testenv.NeedRoot(t)
	host := testenv.Registry(t)
	key := strings.Repeat("ab", 32)
	honest := makeLayer(t, file("one", "honest\n"))
	poison := makeLayer(t, file("one", "poisoned\n"))
	escape := makeLayer(t, file("../../../../escaped", "out\n"))
	good, bad := diffIDOf(t, honest), diffIDOf(t, poison)
	rec := func(edit func(*BuildRecord)) BuildRecord {
		r := BuildRecord{Key: key, Kind: "run", Summary: "run echo honest", DiffID: good, BaseLayers: []string{good}}
		if edit != nil {
			edit(&r)
		}
		return r
	}
	for _, c := range []struct {
		name   string
		img    v1.Image
		pin    string
		check  func(BuildRecord) error
		refuse bool
	}{
		{"honest", cacheImage(t, honest, "", rec(nil)), good, nil, false},
		{"honest, nothing pinned", cacheImage(t, honest, "", rec(nil)), "", nil, false},
		{"config claims the pin", cacheImage(t, poison, good, rec(nil)), good, nil, true},
		{"record claims the pin", cacheImage(t, poison, "", rec(nil)), good, nil, true},
		{"lock pins another", cacheImage(t, poison, "", rec(func(r *BuildRecord) { r.DiffID = bad })), good, nil, true},
		{"record and config disagree", cacheImage(t, poison, "", rec(nil)), "", nil, true},
		{"../ base layer", cacheImage(t, honest, "", rec(func(r *BuildRecord) { r.BaseLayers = []string{"../../etc"} })), good, nil, true},
		{"escape in summary", cacheImage(t, honest, "", rec(func(r *BuildRecord) { r.Summary = "run \x1b]0;x\x07" })), good, nil, true},
		{"newline in node", cacheImage(t, honest, "", rec(func(r *BuildRecord) { r.Node = "1.2.3\n[base]" })), good, nil, true},
		{"another step's record", cacheImage(t, honest, "", rec(func(r *BuildRecord) { r.Key = strings.Repeat("cd", 32) })), good, nil, true},
		{"caller refuses", cacheImage(t, honest, "", rec(nil)), good, func(BuildRecord) error { return errors.New("no") }, true},
		{"../ entry", cacheImage(t, escape, "", rec(func(r *BuildRecord) { r.DiffID = "" })), "", nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			s, err := Open(filepath.Join(base, "store"))
			if err != nil {
				t.Fatal(err)
			}
			push(t, host, "cache:sha256-"+key, c.img)
			got, ok, err := s.PullBuild(context.Background(), host+"/cache", CachePull{Key: key, DiffID: c.pin, Check: c.check}, PullOptions{})
			if c.refuse {
				t.Logf("refused: %v", err)
				if ok || err == nil || !errors.Is(err, ErrCacheRefused) && !strings.Contains(err.Error(), "escaped") {
					t.Errorf("used (%v, %v)", ok, err)
				}
				if s.HasBuild(key) {
					t.Error("the refused step is in the store")
				}
			} else if !ok || err != nil || got.DiffID != good {
				t.Errorf("not used: %v %v %+v", ok, err, got)
			} else if b, _ := os.ReadFile(filepath.Join(s.BuildDir(key), "one")); string(b) != "honest\n" {
				t.Errorf("stored layer: %q", b)
			}
			if left, _ := os.ReadDir(s.Root().Tmp()); len(left) != 0 {
				t.Errorf("left in tmp/: %v", left)
			}
			if _, err := os.Lstat(filepath.Join(base, "escaped")); err == nil {
				t.Error("a ../ entry was written outside the layer")
			}
		})
	}
}
