package rootfs

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// ent is one tar entry of a generated layer.
type ent struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	body     string
	link     string
	xattrs   map[string]string
}

func file(name, body string) ent { return ent{name: name, typ: tar.TypeReg, mode: 0o644, body: body} }
func dir(name string) ent        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, to string) ent {
	return ent{name: name, typ: tar.TypeSymlink, mode: 0o777, link: to}
}
func hardlink(name, to string) ent { return ent{name: name, typ: tar.TypeLink, mode: 0o644, link: to} }
func whiteout(name string) ent {
	return ent{name: filepath.Join(filepath.Dir(name), ".wh."+filepath.Base(name)), typ: tar.TypeReg, mode: 0o600}
}
func opaque(d string) ent { return ent{name: d + "/.wh..wh..opq", typ: tar.TypeReg, mode: 0o600} }

var testTime = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func layerTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Linkname: e.link, ModTime: testTime, Size: int64(len(e.body)), Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		for k, v := range e.xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func makeLayer(t testing.TB, ents ...ent) v1.Layer {
	t.Helper()
	data := layerTar(t, ents...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func makeImage(t testing.TB, layers ...[]ent) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for _, ents := range layers {
		ls = append(ls, makeLayer(t, ents...))
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", HostPlatform().Architecture
	cf.Config.Env = []string{"PATH=/usr/bin:/bin", "FROM_IMAGE=1"}
	cf.Config.WorkingDir = "/srv"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func push(t testing.TB, host, repo string, img v1.Image) Ref {
	t.Helper()
	r, err := name.ParseReference(host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	ref, err := ParseRef(host+"/"+repo, "")
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// entryInfo is what a tree comparison looks at for one path.
type entryInfo struct {
	Type     string
	Mode     fs.FileMode
	UID, GID uint32
	Content  string // sha256 of a file, target of a link
	Xattrs   string
	MTime    int64 // files and symlinks only
}

// snapshot walks root and records every entry.
func snapshot(t testing.TB, root string) map[string]entryInfo {
	t.Helper()
	out := map[string]entryInfo{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fi, _ := d.Info()
		e := entryInfo{Mode: fi.Mode(), UID: st.Uid, GID: st.Gid}
		switch {
		case fi.Mode().IsRegular():
			e.Type = "file"
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			e.Content = hex.EncodeToString(sum[:8])
			e.MTime = st.Mtim.Sec
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type = "symlink"
			e.Content, _ = os.Readlink(p)
			e.MTime = st.Mtim.Sec
		case fi.IsDir():
			e.Type = "dir"
		default:
			e.Type = fmt.Sprintf("other %v rdev %d", fi.Mode().Type(), st.Rdev)
		}
		if names, err := listXattrs(p); err == nil {
			var xs []string
			for _, n := range names {
				if strings.HasPrefix(n, "trusted.overlay.") || strings.HasPrefix(n, "security.selinux") {
					continue
				}
				v, _ := getXattr(p, n)
				xs = append(xs, n+"="+string(v))
			}
			sort.Strings(xs)
			e.Xattrs = strings.Join(xs, ",")
		}
		if rel == "." {
			return nil // the root's own attributes depend on where it was made
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffSnapshots(want, got map[string]entryInfo) []string {
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			diffs = append(diffs, "missing "+p)
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: want %+v, got %+v", p, w, g))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "extra "+p)
		}
	}
	sort.Strings(diffs)
	return diffs
}

// oracleTree flattens img with go-containerregistry's mutate.Extract and
// unpacks it with GNU tar: what a user gets from `crane export | tar -x`.
func oracleTree(t testing.TB, img v1.Image) string {
	t.Helper()
	dir := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	cmd := exec.Command("tar", "-x", "--same-owner", "--same-permissions", "--xattrs", "--xattrs-include=*", "-C", dir)
	cmd.Stdin = rc
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	return dir
}

// mountStack mounts the overlay of the store layers of img read-only and
// returns the merged directory.
func mountStack(t testing.TB, s *Store, img *Image) string {
	t.Helper()
	lowers := s.LowerDirs(img)
	merged := t.TempDir()
	if len(lowers) == 1 {
		// overlayfs needs two lower layers when there is no upper one.
		lowers = append(lowers, t.TempDir())
	}
	esc := strings.NewReplacer(`\`, `\\`, `,`, `\,`, `:`, `\:`)
	for i := range lowers {
		lowers[i] = esc.Replace(lowers[i])
	}
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, opts); err != nil {
		out, _ := exec.Command("ls", append([]string{"-la"}, lowers...)...).CombinedOutput()
		t.Fatalf("mount overlay %s: %v\n%s", opts, err, out)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	return merged
}
