package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/devbox/devbox/devenv/lock"
	"github.com/devbox/devbox/internal/testenv"
)

// A cache image's build record label (rootfs.recordLabel).
const cacheRecordLabel = "dev.devbox.build-record"

// cachedSteps builds spec in a fresh state root, pushes every step to the
// cache and returns the project dir and its devbox.lock.
func cachedSteps(t *testing.T, spec string) (dir string, lockFile []byte, pins *lock.File) {
	t.Helper()
	dir, root := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644)
	if r := devbox(t, dir, "--root", root, "build"); r.code != 0 {
		t.Fatalf("build: %s", tail(r.stderr))
	}
	if r := devbox(t, dir, "--root", root, "cache", "push"); r.code != 0 {
		t.Fatalf("cache push: %d %s", r.code, tail(r.stderr))
	}
	lockPath := filepath.Join(dir, "devbox.lock")
	lockFile, _ = os.ReadFile(lockPath)
	pins, err := lock.Read(lockPath)
	if err != nil || pins == nil {
		t.Fatalf("read the lock: %v", err)
	}
	return dir, lockFile, pins
}

// stepOf is the locked step of kind whose summary contains what.
func stepOf(t *testing.T, pins *lock.File, kind, what string) lock.Step {
	t.Helper()
	for _, st := range pins.Steps {
		if st.Kind == kind && strings.Contains(st.Summary, what) {
			return st
		}
	}
	t.Fatalf("no %s step %q in the lock: %+v", kind, what, pins.Steps)
	return lock.Step{}
}

// replaceCached does what a team member with write access to the cache
// can: rewrite the image of step key with another layer (the original if
// nil), a record edited by edit and a config whose diff_ids claim claim
// (the layer's true diffID if "").
func replaceCached(t *testing.T, cache, key string, layer v1.Layer, claim string, edit func(rec map[string]any)) {
	t.Helper()
	ref, err := name.ParseReference(cache + ":sha256-" + key)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("read the cached step: %v", err)
	}
	cf, err := orig.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if layer == nil {
		ls, err := orig.Layers()
		if err != nil || len(ls) != 1 {
			t.Fatalf("cached step's layers: %d %v", len(ls), err)
		}
		layer = ls[0]
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer})
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(cf.Config.Labels[cacheRecordLabel]), &rec); err != nil {
		t.Fatalf("record label: %v", err)
	}
	edit(rec)
	data, _ := json.Marshal(rec)
	cf = cf.DeepCopy()
	cf.Config.Labels[cacheRecordLabel] = string(data)
	diffID, err := layer.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	if claim != "" {
		if diffID, err = v1.NewHash(claim); err != nil {
			t.Fatal(err)
		}
	}
	cf.RootFS.DiffIDs = []v1.Hash{diffID}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("replace the cached step: %v", err)
	}
}

// tarLayer is a layer of the given files (name → content).
func tarLayer(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for n, c := range files {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg})
		io.WriteString(tw, c)
	}
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestBuildCachePoisoned: someone who can write the team's cache replaces
// a step's image with another layer whose config or record claims the
// diffID devbox.lock pins. A teammate's `build --locked` drops it, builds
// the step itself with a warning naming the step, and ends with the
// lock's diffID; nothing of the poisoned layer is used or kept, and its
// `../` entry reaches nothing outside the layer.
func TestBuildCachePoisoned(t *testing.T) {
	testenv.NeedRoot(t)
	base := debianRegistry(t)
	cache := testenv.Registry(t) + "/team/cache"
	// touch -d @0: the step makes the same layer on every machine.
	spec := fmt.Sprintf("base = %q\n[cache]\nimage = %q\n[network]\nmode = \"none\"\n\n[[run]]\ncommand = \"echo honest > /one && touch -d @0 /one\"\n", base, cache)
	_, lockFile, pins := cachedSteps(t, spec)
	st := stepOf(t, pins, "run", "echo honest")
	escape := filepath.Join(t.TempDir(), "escaped")
	poison := tarLayer(t, map[string]string{"one": "poisoned\n"})
	escaping := tarLayer(t, map[string]string{"one": "poisoned\n", "../../../../../../.." + escape: "out\n"})

	for _, c := range []struct {
		name  string
		layer v1.Layer
		claim string // what the config's diff_ids say
	}{
		{"config claims the pinned diffID", poison, st.DiffID},
		{"only the record claims it", poison, ""},
		{"a ../ entry", escaping, st.DiffID},
	} {
		t.Run(c.name, func(t *testing.T) {
			replaceCached(t, cache, st.Key, c.layer, c.claim, func(rec map[string]any) { rec["diff_id"] = st.DiffID })
			theirs, root := t.TempDir(), t.TempDir()
			os.WriteFile(filepath.Join(theirs, "devbox.toml"), []byte(spec), 0o644)
			os.WriteFile(filepath.Join(theirs, "devbox.lock"), lockFile, 0o644)
			r := devbox(t, theirs, "--root", root, "build", "--locked")
			if r.code != 0 {
				t.Fatalf("build --locked over a poisoned cache: %d %s", r.code, tail(r.stderr))
			}
			if !regexpMatch(`warning: step \[\d/\d\] run echo honest.*: .*building the step here`, r.stderr) {
				t.Errorf("no warning naming the step:\n%s", tail(r.stderr))
			}
			if again, _ := os.ReadFile(filepath.Join(theirs, "devbox.lock")); string(again) != string(lockFile) {
				t.Errorf("the lock changed:\n%s", again)
			}
			if r := devbox(t, theirs, "--root", root, "run", "--", "cat", "/one"); r.code != 0 || r.stdout != "honest\n" {
				t.Errorf("/one after the build: %d %q %s", r.code, r.stdout, tail(r.stderr))
			}
			if _, err := os.Lstat(escape); err == nil {
				t.Error("the layer's ../ entry was written outside it")
			}
			if found := findContent(t, root, "poisoned\n"); found != "" {
				t.Errorf("the poisoned layer stayed in the store: %s", found)
			}
		})
	}
}

// findContent is the first regular file under dir holding exactly content.
func findContent(t *testing.T, dir, content string) string {
	t.Helper()
	var found string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || found != "" || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err != nil || fi.Size() != int64(len(content)) {
			return nil
		}
		if b, _ := os.ReadFile(p); string(b) == content {
			found = p
		}
		return nil
	})
	return found
}

// TestBuildCacheHostileRecord: a cached step whose layer is the honest one
// but whose record carries terminal escapes, TOML for devbox.lock and a
// `../` base layer name is refused as a whole: none of it reaches the
// terminal raw or the lock, and the step is built here.
func TestBuildCacheHostileRecord(t *testing.T) {
	testenv.NeedRoot(t)
	base := debianRegistry(t)
	cache := testenv.Registry(t) + "/team/cache"
	m := newNodeMirror(t, "99.1.2")
	spec := fmt.Sprintf("base = %q\n[node]\nversion = \"99\"\nmirror = %q\n[cache]\nimage = %q\n[network]\nmode = \"none\"\n", base, m.URL, cache)
	_, lockFile, pins := cachedSteps(t, spec)
	st := stepOf(t, pins, "node", "")
	replaceCached(t, cache, st.Key, nil, "", func(rec map[string]any) {
		rec["summary"] = "node \x1b[2J\x1b]0;pwned\x07"
		rec["base_layers"] = []string{"../../../../etc"}
		res, _ := rec["resolved"].(map[string]any)
		if res == nil {
			res = map[string]any{}
		}
		res["npm.version"] = "10.0.0\x1b]0;pwned\x07\n[evil]\nref = \"evil\""
		res["node.url"] = "http://x/\"\n[base]\nref = \"evil\""
		rec["resolved"] = res
	})
	theirs, root := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(theirs, "devbox.toml"), []byte(spec), 0o644)
	os.WriteFile(filepath.Join(theirs, "devbox.lock"), lockFile, 0o644)
	r := devbox(t, theirs, "--root", root, "build")
	if r.code != 0 {
		t.Fatalf("build over a hostile record: %d %s", r.code, tail(r.stderr))
	}
	for _, out := range []string{r.stdout, r.stderr} {
		if strings.ContainsAny(out, "\x1b\x07") {
			t.Errorf("a raw control character reached the terminal:\n%q", out)
		}
	}
	if !regexpMatch(`warning: step \[\d/\d\] node .*: .*building the step here`, r.stderr) {
		t.Errorf("no warning naming the step:\n%s", tail(r.stderr))
	}
	after, _ := os.ReadFile(filepath.Join(theirs, "devbox.lock"))
	if strings.Contains(string(after), "evil") || strings.Contains(string(after), "pwned") {
		t.Errorf("the record reached devbox.lock:\n%s", after)
	}
	got, err := lock.Read(filepath.Join(theirs, "devbox.lock"))
	if err != nil || got == nil || *got.Node != *pins.Node {
		t.Errorf("the lock's node pins changed (%v):\n%s\n---\n%s", err, lockFile, after)
	}
}
