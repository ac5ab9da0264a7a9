package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/testenv"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// bigImage has n layers of size random (incompressible) bytes each, so a
// pull takes long enough to be killed in the middle of a layer.
func bigImage(t *testing.T, prefix string, n, size int) (v1.Image, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{}
	var layers []v1.Layer
	for i := 0; i < n; i++ {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for j := 0; j < 4; j++ {
			data := make([]byte, size/4)
			rand.Read(data)
			p := filepath.Join(prefix, string(rune('a'+i)), string(rune('a'+j)))
			tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)})
			tw.Write(data)
			files[p] = data
		}
		tw.Close()
		b := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img, files
}

func pushImage(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

type storedImage struct {
	Ref    string   `json:"ref"`
	Digest string   `json:"digest"`
	Layers []string `json:"layers"`
}

func imageLs(t *testing.T, state string) []storedImage {
	t.Helper()
	r := devbox(t, t.TempDir(), "--root", state, "image", "ls", "--json")
	if r.code != 0 {
		t.Fatalf("image ls: exit %d: %s", r.code, r.stderr)
	}
	var imgs []storedImage
	if err := json.Unmarshal([]byte(r.stdout), &imgs); err != nil {
		t.Fatalf("image ls --json: %v\n%s", err, r.stdout)
	}
	return imgs
}

func TestImageCommands(t *testing.T) {
	testenv.NeedRoot(t)
	host := testenv.Registry(t)
	img, files := bigImage(t, "data", 2, 64<<10)
	ref := host + "/team/base:1"
	pushImage(t, ref, img)
	state := t.TempDir()
	dir := t.TempDir()

	r := devbox(t, dir, "--root", state, "image", "pull", ref)
	if r.code != 0 {
		t.Fatalf("pull: exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "unpacked") {
		t.Errorf("pull printed no layer lines:\n%s", r.stderr)
	}
	imgs := imageLs(t, state)
	if len(imgs) != 1 || imgs[0].Ref != ref || len(imgs[0].Layers) != 2 {
		t.Fatalf("image ls = %+v", imgs)
	}
	checkFiles(t, state, imgs[0].Layers, files)
	if r := devbox(t, dir, "--root", state, "image", "ls"); !strings.Contains(r.stdout, ref) || !strings.Contains(r.stdout, "DIGEST") {
		t.Errorf("image ls table:\n%s", r.stdout)
	}
	// A second pull downloads nothing.
	if r := devbox(t, dir, "--root", state, "image", "pull", ref); r.code != 0 || strings.Contains(r.stderr, "unpacked") {
		t.Errorf("warm pull: exit %d\n%s", r.code, r.stderr)
	}
	// Import the same content from a docker-archive under another name.
	archive := filepath.Join(dir, "img.tar")
	tag, _ := name.NewTag("example.com/x:1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	if r := devbox(t, dir, "--root", state, "image", "import", archive, "--name", "team/imported:1"); r.code != 0 {
		t.Fatalf("import: exit %d: %s", r.code, r.stderr)
	}
	if r := devbox(t, dir, "--root", state, "image", "import", archive); r.code != 2 {
		t.Errorf("import without --name: exit %d, want 2", r.code)
	}
	if n := len(imageLs(t, state)); n != 2 {
		t.Errorf("%d images after import, want 2", n)
	}
	// rm one: its shared layers stay; rm both and prune: the layers go.
	if r := devbox(t, dir, "--root", state, "image", "rm", ref); r.code != 0 {
		t.Fatalf("rm: exit %d: %s", r.code, r.stderr)
	}
	if r := devbox(t, dir, "--root", state, "image", "prune"); r.code != 0 || !strings.Contains(r.stdout, "deleted 0 layers") {
		t.Errorf("prune with the layers in use: %q %s", r.stdout, r.stderr)
	}
	devbox(t, dir, "--root", state, "image", "rm", "team/imported:1")
	if r := devbox(t, dir, "--root", state, "image", "prune"); r.code != 0 || !strings.Contains(r.stdout, "deleted 2 layers") {
		t.Errorf("prune: %q %s", r.stdout, r.stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(state, "layers", "*")); len(left) != 0 {
		t.Errorf("layers left after prune: %v", left)
	}
	if r := devbox(t, dir, "--root", state, "image", "rm", ref); r.code != 1 || !strings.Contains(r.stderr, "not in the store") {
		t.Errorf("rm of a missing image: exit %d %q", r.code, r.stderr)
	}
}

func checkFiles(t *testing.T, state string, layers []string, files map[string][]byte) {
	t.Helper()
	for p, want := range files {
		found := false
		for _, id := range layers {
			data, err := os.ReadFile(filepath.Join(state, "layers", strings.TrimPrefix(id, "sha256:"), p))
			if err == nil {
				found = true
				if !bytes.Equal(data, want) {
					t.Errorf("%s differs in layer %s", p, id)
				}
			}
		}
		if !found {
			t.Errorf("%s is in no layer", p)
		}
	}
}

// TestPullKilledAndRerun kills `devbox image pull` at a random point of
// a cold pull, checks that no half-written layer is ever recorded, and
// that a rerun then succeeds; six times, each with a new image.
func TestPullKilledAndRerun(t *testing.T) {
	testenv.NeedRoot(t)
	host := testenv.Registry(t)
	state := t.TempDir()
	partial := 0
	for i := 0; i < 6; i++ {
		img, files := bigImage(t, fmt.Sprintf("img%d", i), 3, 16<<20)
		ref := fmt.Sprintf("%s/big/img:%d", host, i)
		pushImage(t, ref, img)
		cmd := exec.Command(devboxBin, "--root", state, "image", "pull", ref)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until unpacking has begun, then kill at a random point of it.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if ents, _ := os.ReadDir(filepath.Join(state, "tmp")); len(ents) > 0 {
				break
			}
		}
		n, _ := rand.Int(rand.Reader, big.NewInt(80))
		time.Sleep(time.Duration(n.Int64()) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if left, _ := os.ReadDir(filepath.Join(state, "tmp")); len(left) > 0 {
			partial++
		}
		// Every layer recorded as complete is whole, and no image names a
		// layer that is not.
		markers, _ := filepath.Glob(filepath.Join(state, "layers", "*.json"))
		for _, m := range markers {
			checkLayerWhole(t, strings.TrimSuffix(m, ".json"), files)
		}
		for _, im := range imageLs(t, state) {
			for _, id := range im.Layers {
				if _, err := os.Stat(filepath.Join(state, "layers", strings.TrimPrefix(id, "sha256:")+".json")); err != nil {
					t.Fatalf("image %s recorded with an incomplete layer %s", im.Ref, id)
				}
			}
		}
		r := devbox(t, t.TempDir(), "--root", state, "image", "pull", ref)
		if r.code != 0 {
			t.Fatalf("rerun after kill: exit %d: %s", r.code, r.stderr)
		}
		for _, im := range imageLs(t, state) {
			if im.Ref == ref {
				checkFiles(t, state, im.Layers, files)
			}
		}
		if left, _ := os.ReadDir(filepath.Join(state, "tmp")); len(left) != 0 {
			t.Errorf("tmp/ left after the rerun: %v", left)
		}
	}
	if partial == 0 {
		t.Errorf("no kill landed in the middle of a layer; the test proved nothing")
	}
	t.Logf("%d of 6 kills left a half-unpacked layer behind", partial)
}

// checkLayerWhole checks that every file of a layer directory is complete.
func checkLayerWhole(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		data, _ := os.ReadFile(p)
		if want, ok := files[rel]; ok && !bytes.Equal(data, want) {
			t.Errorf("recorded layer %s has a partial %s (%d of %d bytes)", filepath.Base(dir), rel, len(data), len(want))
		}
		return nil
	})
}
