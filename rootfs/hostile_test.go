package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox/devbox/internal/testenv"

	"golang.org/x/sys/unix"
)

// hostileEnv is a store with a canary tree beside it: base/store and
// base/canary. Layers unpack in base/store/tmp/X, so "../../../canary"
// from a layer root is the canary.
type hostileEnv struct {
	base, canary string
	store        *Store
}

func newHostileEnv(t *testing.T) *hostileEnv {
	base := t.TempDir()
	canary := filepath.Join(base, "canary")
	os.MkdirAll(filepath.Join(canary, "dir"), 0o755)
	os.WriteFile(filepath.Join(canary, "file"), []byte("canary"), 0o644)
	s, err := Open(filepath.Join(base, "store"))
	if err != nil {
		t.Fatal(err)
	}
	return &hostileEnv{base: base, canary: canary, store: s}
}

func TestHostileLayers(t *testing.T) {
	testenv.NeedRoot(t)
	up := "../../../canary"
	cases := []struct {
		name   string
		layers [][]ent
		// errWant is part of the error; "" means the layer is harmless
		// once contained and must unpack.
		errWant string
	}{
		{"dotdot file", [][]ent{{file(up+"/pwned", "x")}}, "escapes the layer root"},
		{"dotdot deep", [][]ent{{file("a/b/../../../../../canary/pwned", "x")}}, "escapes the layer root"},
		{"dotdot dir", [][]ent{{dir(up + "/newdir")}}, "escapes the layer root"},
		{"relative symlink out then write through", [][]ent{{symlink("l", up), file("l/pwned", "x")}}, "l/pwned"},
		{"absolute symlink then write through", [][]ent{{symlink("l", "/"), file("l/"+strings.TrimPrefix(up, "../"), "x")}}, "l/"},
		{"chained symlinks", [][]ent{{symlink("a", "b"), symlink("b", "c"), symlink("c", up), file("a/pwned", "x")}}, "a/pwned"},
		{"symlink dir then opaque", [][]ent{{symlink("l", up), opaque("l")}}, "l/.wh..wh..opq"},
		{"symlink dir then whiteout", [][]ent{{symlink("l", up), whiteout("l/file")}}, "l/.wh.file"},
		{"whiteout climbing out", [][]ent{{whiteout(up + "/file")}}, "escapes the layer root"},
		{"hardlink to outside", [][]ent{{hardlink("h", up+"/file")}}, "escapes the layer root"},
		{"hardlink to absolute host file", [][]ent{{hardlink("h", "/etc/passwd")}}, "not a file in this or a lower layer"},
		{"symlink replacing the root", [][]ent{{symlink(".", up)}}, "would replace the layer root"},
		{"symlink replacing the root, ./", [][]ent{{symlink("./", "/")}}, "would replace the layer root"},
		{"file replacing the root", [][]ent{{file(".", "x")}}, "would replace the layer root"},
		{"symlink in lower layer, write in upper", [][]ent{{symlink("l", up)}, {file("l/pwned", "x")}}, ""},
		{"absolute name stays inside", [][]ent{{file("/"+strings.TrimPrefix(up, "../../../")+"/file", "inside")}}, ""},
		{"symlink swapped for a file", [][]ent{{file("f", "1"), symlink("f", up+"/file"), file("f", "2")}}, ""},
		{"device nodes skipped", [][]ent{{{name: "sda", typ: tar.TypeBlock, mode: 0o600}, {name: "mem", typ: tar.TypeChar, mode: 0o600}}}, ""},
		{"overlay xattrs dropped", [][]ent{{{name: "d", typ: tar.TypeDir, mode: 0o755, xattrs: map[string]string{"trusted.overlay.redirect": "/etc", "trusted.overlay.opaque": "y", "user.overlay.redirect": "/etc", "user.overlay.opaque": "y"}}}}, ""},
	}
	host := testenv.Registry(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := newHostileEnv(t)
			before := snapshot(t, env.base)
			img := makeImage(t, c.layers...)
			ref := push(t, host, "hostile/"+repoName(c.name)+":1", img)
			var warnings []string
			stored, err := env.store.Pull(context.Background(), ref, PullOptions{Log: func(s string) { warnings = append(warnings, s) }})
			after := snapshot(t, env.canary)
			for p := range after {
				if _, ok := before["canary/"+p]; !ok {
					t.Errorf("canary gained %s", p)
				}
			}
			for p, e := range before {
				if rest, ok := strings.CutPrefix(p, "canary/"); ok && after[rest] != e {
					t.Errorf("canary %s changed: %+v -> %+v", rest, e, after[rest])
				}
			}
			if c.errWant == "" {
				if err != nil {
					t.Fatalf("contained layer failed: %v", err)
				}
				checkContained(t, env, c.name, stored, warnings)
				return
			}
			if err == nil {
				t.Fatalf("hostile layer unpacked without error")
			}
			if !strings.Contains(err.Error(), c.errWant) {
				t.Errorf("error %q does not say %q", err, c.errWant)
			}
			// The store is as it was: no layer, no image, nothing in tmp.
			for _, d := range []string{"layers", "images", "tmp"} {
				if ents, _ := os.ReadDir(filepath.Join(env.store.Root().Dir(), d)); len(ents) != 0 {
					t.Errorf("%s/ not empty after a failed pull: %v", d, ents)
				}
			}
		})
	}
}

func checkContained(t *testing.T, env *hostileEnv, name string, img *Image, warnings []string) {
	top := env.store.LayerDir(img.Layers[len(img.Layers)-1])
	switch name {
	case "absolute name stays inside":
		data, err := os.ReadFile(filepath.Join(top, "canary", "file"))
		if err != nil || string(data) != "inside" {
			t.Errorf("absolute entry not unpacked inside the layer: %q %v", data, err)
		}
	case "symlink in lower layer, write in upper":
		if fi, err := os.Lstat(filepath.Join(top, "l")); err != nil || !fi.IsDir() {
			t.Errorf("upper l should be a plain directory: %v %v", fi, err)
		}
	case "symlink swapped for a file":
		if data, _ := os.ReadFile(filepath.Join(top, "f")); string(data) != "2" {
			t.Errorf("f = %q", data)
		}
	case "device nodes skipped":
		for _, n := range []string{"sda", "mem"} {
			if _, err := os.Lstat(filepath.Join(top, n)); err == nil {
				t.Errorf("device node %s was created", n)
			}
		}
		if len(warnings) != 2 {
			t.Errorf("warnings = %q, want one per device", warnings)
		}
	case "overlay xattrs dropped":
		buf := make([]byte, 64)
		for _, x := range []string{"trusted.overlay.redirect", "trusted.overlay.opaque", "user.overlay.redirect", "user.overlay.opaque"} {
			if _, err := unix.Lgetxattr(filepath.Join(top, "d"), x, buf); err == nil {
				t.Errorf("%s was set from the layer", x)
			}
		}
	}
}

// FuzzExtract: whatever the tar, extraction never panics and never writes
// outside its root.
func FuzzExtract(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("needs root (owners, device nodes); CI runs as root")
	}
	seeds := [][]ent{
		{file("a", "x"), symlink("l", "../.."), file("l/b", "y")},
		{dir("d"), opaque("d"), whiteout("d/x"), hardlink("h", "a")},
		{symlink("s", "/"), hardlink("h", "s/etc/passwd"), file("../x", "x")},
	}
	for _, s := range seeds {
		f.Add(layerTar(f, s...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		root := filepath.Join(base, "a", "b", "root")
		os.MkdirAll(root, 0o755)
		x, _ := extractTar(bytes.NewReader(data), root, func(string) {})
		if x != nil {
			fixup(root, x, nil)
		}
		ents, _ := os.ReadDir(base)
		if len(ents) != 1 {
			t.Fatalf("wrote outside the root: %v", ents)
		}
		ents, _ = os.ReadDir(filepath.Join(base, "a"))
		if len(ents) != 1 {
			t.Fatalf("wrote outside the root: %v", ents)
		}
	})
}
