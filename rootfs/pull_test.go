package rootfs

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/devbox/devbox/internal/testenv"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// oracleCases are multi-layer images whose overlay-mounted store layers
// must equal go-containerregistry's flattening of the same image.
var oracleCases = []struct {
	name   string
	layers [][]ent
	// files, when set, are checked instead of the oracle: mutate.Extract
	// writes a hard link before the lower-layer file it links to, which
	// tar cannot unpack.
	files map[string]string
}{
	{"add and overwrite", [][]ent{
		{dir("etc"), file("etc/a", "one"), file("etc/b", "b")},
		{file("etc/a", "two"), file("etc/c", "c")},
	}, nil},
	{"delete file", [][]ent{
		{dir("d"), file("d/keep", "k"), file("d/gone", "g")},
		{whiteout("d/gone")},
	}, nil},
	{"delete dir", [][]ent{
		{dir("d"), dir("d/sub"), file("d/sub/x", "x"), file("d/y", "y")},
		{whiteout("d/sub")},
	}, nil},
	{"re-created dir", [][]ent{
		{dir("d"), file("d/old", "old")},
		{whiteout("d")},
		{dir("d"), file("d/new", "new")},
	}, nil},
	{"opaque dir", [][]ent{
		{dir("d"), file("d/old1", "1"), dir("d/olddir"), file("d/olddir/f", "f")},
		{dir("d"), opaque("d"), file("d/new", "n")},
	}, nil},
	{"hardlinks in a layer", [][]ent{
		{dir("bin"), file("bin/a", "same"), hardlink("bin/b", "bin/a")},
	}, nil},
	{"hardlink across layers", [][]ent{
		{dir("bin"), file("bin/tool", "tool body")},
		{hardlink("bin/alias", "bin/tool")},
	}, map[string]string{"bin/tool": "tool body", "bin/alias": "tool body"}},
	{"symlink replaced by dir", [][]ent{
		{dir("real"), file("real/f", "f"), symlink("s", "real")},
		{dir("s"), file("s/g", "g")},
	}, nil},
	{"dir replaced by file", [][]ent{
		{dir("x"), file("x/inner", "i")},
		{file("x", "now a file")},
	}, nil},
	{"file replaced by symlink", [][]ent{
		{file("f", "f"), file("target", "t")},
		{symlink("f", "target")},
	}, nil},
	{"implied dir keeps lower owner and mode", [][]ent{
		{dir("p"), {name: "p/q", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000}, file("p/q/a", "a")},
		{file("p/q/b", "b")},
	}, nil},
	{"special bits, owners, xattrs, fifo", [][]ent{
		{dir("usr"), {name: "usr/su", typ: tar.TypeReg, mode: 0o4755, body: "suid"},
			{name: "usr/sg", typ: tar.TypeReg, mode: 0o2755, uid: 0, gid: 5, body: "sgid"},
			{name: "tmp", typ: tar.TypeDir, mode: 0o1777},
			{name: "usr/cap", typ: tar.TypeReg, mode: 0o755, body: "c", xattrs: map[string]string{"user.note": "hello"}},
			{name: "usr/owned", typ: tar.TypeReg, mode: 0o600, uid: 1234, gid: 4321, body: "o"},
			{name: "usr/fifo", typ: tar.TypeFifo, mode: 0o644}},
		{{name: "usr/owned", typ: tar.TypeReg, mode: 0o640, uid: 99, gid: 98, body: "o2"}},
	}, nil},
	{"files in a setgid directory keep their own group", [][]ent{
		{{name: "usr", typ: tar.TypeDir, mode: 0o755}, {name: "usr/local", typ: tar.TypeDir, mode: 0o2775, gid: 50},
			file("usr/local/rootfile", "r"), {name: "usr/local/staff", typ: tar.TypeReg, mode: 0o644, gid: 50, body: "s"}},
		{file("usr/local/later", "l")},
	}, nil},
	{"whiteout then re-add in a later layer", [][]ent{
		{file("a", "1")},
		{whiteout("a")},
		{file("a", "3")},
	}, nil},
}

func TestPullMatchesOracle(t *testing.T) {
	testenv.NeedRoot(t)
	host := testenv.Registry(t)
	for _, c := range oracleCases {
		t.Run(c.name, func(t *testing.T) {
			img := makeImage(t, c.layers...)
			ref := push(t, host, "oracle/"+repoName(c.name)+":1", img)
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			stored, err := s.Pull(context.Background(), ref, PullOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(stored.Layers) != len(c.layers) {
				t.Fatalf("%d layers stored, want %d", len(stored.Layers), len(c.layers))
			}
			merged := mountStack(t, s, stored)
			if c.files != nil {
				for f, body := range c.files {
					if data, err := os.ReadFile(filepath.Join(merged, f)); err != nil || string(data) != body {
						t.Errorf("%s = %q, %v; want %q", f, data, err, body)
					}
				}
				return
			}
			want := snapshot(t, oracleTree(t, img))
			got := snapshot(t, merged)
			if d := diffSnapshots(want, got); len(d) > 0 {
				t.Errorf("overlay differs from mutate.Extract:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

func repoName(s string) string {
	return strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(s), "-"), "-")
}

func TestPullSources(t *testing.T) {
	testenv.NeedRoot(t)
	img := makeImage(t, []ent{dir("etc"), file("etc/os-release", "ID=test\n")}, []ent{file("etc/motd", "hi")})
	digest, _ := img.Digest()
	base := t.TempDir()

	// OCI layout, tagged.
	ociDir := filepath.Join(base, "oci")
	lp, err := layout.Write(ociDir, emptyIndex())
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	// docker save tarball.
	archive := filepath.Join(base, "img.tar")
	tag, _ := name.NewTag("example.com/test:v1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	host := testenv.Registry(t)
	regRef := push(t, host, "src/test:v1", img)

	s, _ := Open(filepath.Join(base, "store"))
	for _, spec := range []string{"oci:" + ociDir + ":v1", "oci:" + ociDir, "docker-archive:" + archive, regRef.String()} {
		ref, err := ParseRef(spec, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Pull(context.Background(), ref, PullOptions{})
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if got.Config.WorkingDir != "/srv" || len(got.Config.Env) != 2 {
			t.Errorf("%s: config = %+v", spec, got.Config)
		}
		if ref.Kind != KindDockerArchive && got.Digest != digest.String() {
			t.Errorf("%s: digest %s, want %s", spec, got.Digest, digest)
		}
		data, err := os.ReadFile(filepath.Join(s.LayerDir(got.Layers[1]), "etc", "motd"))
		if err != nil || string(data) != "hi" {
			t.Errorf("%s: motd = %q, %v", spec, data, err)
		}
	}
	// Every source shares the same two layer directories.
	entries, _ := filepath.Glob(filepath.Join(s.Root().Dir(), "layers", "*.json"))
	if len(entries) != 2 {
		t.Errorf("%d layers stored for one image from four sources, want 2", len(entries))
	}
	if _, err := ParseRef("oci:"+ociDir+":nope", ""); err != nil {
		t.Fatal(err)
	}
	bad, _ := ParseRef("oci:"+ociDir+":nope", "")
	if _, err := s.Pull(context.Background(), bad, PullOptions{}); err == nil || !strings.Contains(err.Error(), "no image tagged") {
		t.Errorf("missing tag: %v", err)
	}
}

func TestPullDir(t *testing.T) {
	testenv.NeedRoot(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "usr", "bin"), 0o755)
	os.WriteFile(filepath.Join(src, "usr", "bin", "tool"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("usr/bin", filepath.Join(src, "bin"))
	os.Link(filepath.Join(src, "usr", "bin", "tool"), filepath.Join(src, "usr", "bin", "tool2"))
	os.Chown(filepath.Join(src, "usr", "bin", "tool"), 1000, 1000)
	s, _ := Open(t.TempDir())
	ref, _ := ParseRef("dir:"+src, "")
	img, err := s.Pull(context.Background(), ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := diffSnapshots(snapshot(t, src), snapshot(t, s.LayerDir(img.Layers[0]))); len(d) > 0 {
		t.Errorf("dir import differs:\n%s", strings.Join(d, "\n"))
	}
	again, err := s.Pull(context.Background(), ref, PullOptions{Refresh: true})
	if err != nil || again.Digest != img.Digest {
		t.Errorf("re-import of the same tree: digest %s vs %s (%v)", again.Digest, img.Digest, err)
	}
}

func TestWarmPullAndConcurrentPulls(t *testing.T) {
	testenv.NeedRoot(t)
	host := testenv.Registry(t)
	var layers [][]ent
	for i := 0; i < 5; i++ {
		layers = append(layers, []ent{file(strings.Repeat("x", i+1), strings.Repeat("data", 1000*(i+1)))})
	}
	ref := push(t, host, "concurrent/img:1", makeImage(t, layers...))
	s, _ := Open(t.TempDir())
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A store of its own per puller, as separate devbox processes have.
			s2, _ := Open(s.Root().Dir())
			_, errs[i] = s2.Pull(context.Background(), ref, PullOptions{})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	tmp, _ := os.ReadDir(filepath.Join(s.Root().Dir(), "tmp"))
	if len(tmp) != 0 {
		t.Errorf("tmp/ not empty after pulls: %v", tmp)
	}
	// A warm pull fetches nothing: count what the progress sees.
	p := &countProgress{}
	if _, err := s.Pull(context.Background(), ref, PullOptions{Progress: p}); err != nil {
		t.Fatal(err)
	}
	if p.bytes != 0 {
		t.Errorf("warm pull read %d layer bytes", p.bytes)
	}
}

type countProgress struct {
	mu    sync.Mutex
	bytes int64
}

func (c *countProgress) Layer(string, int64) LayerProgress { return c }
func (c *countProgress) Add(n int64)                       { c.mu.Lock(); c.bytes += n; c.mu.Unlock() }
func (c *countProgress) Done(bool, error)                  {}

func TestExportRoundTrip(t *testing.T) {
	testenv.NeedRoot(t)
	c := oracleCases[4] // opaque dir
	host := testenv.Registry(t)
	img := makeImage(t, c.layers...)
	ref := push(t, host, "export/src:1", img)
	s, _ := Open(t.TempDir())
	stored, err := s.Pull(context.Background(), ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, id := range stored.Layers {
		dirs = append(dirs, s.LayerDir(id))
	}
	out, err := Export(context.Background(), dirs, stored.Config)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffSnapshots(snapshot(t, oracleTree(t, img)), snapshot(t, oracleTree(t, out))); len(d) > 0 {
		t.Errorf("exported image differs:\n%s", strings.Join(d, "\n"))
	}
	cf, _ := out.ConfigFile()
	if cf.Config.WorkingDir != "/srv" {
		t.Errorf("exported config = %+v", cf.Config)
	}
}

func emptyIndex() v1.ImageIndex { return empty.Index }
