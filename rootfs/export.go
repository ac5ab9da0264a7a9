package rootfs

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/runtime/userns"
)

// WriteLayerTar writes the tree at dir as a layer tar to w, in a stable
// order so that the same tree always gives the same diffID. With
// overlayForm, dir is a store layer: 0/0 character devices become .wh.
// whiteouts and opaque directories get a .wh..wh..opq entry. Otherwise dir
// is a plain root filesystem and device nodes are left out (the runtime
// provides /dev).
func WriteLayerTar(ctx context.Context, dir string, w io.Writer, overlayForm bool) error {
	return writeLayerTar(ctx, &layerWriter{tw: tar.NewWriter(w), dir: dir, overlayForm: overlayForm,
		links: map[[2]uint64]string{}, buf: make([]byte, FilterMax)})
}

// writeLayerTar writes lw's tree through lw's tar writer.
func writeLayerTar(ctx context.Context, lw *layerWriter) error {
	// The layer directory itself may be a link (a store seeded from
	// another's); WalkDir would not enter it.
	dir, err := filepath.EvalSymlinks(lw.dir)
	if err != nil {
		return err
	}
	lw.dir = dir
	err = filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return lw.add(p)
	})
	if err != nil {
		return err
	}
	return lw.tw.Close()
}

// layerWriter writes one tree as a layer tar.
type layerWriter struct {
	tw          *tar.Writer
	dir         string
	overlayForm bool
	links       map[[2]uint64]string // (dev, ino) → first name, for hard links
	buf         []byte               // FilterMax bytes
	// filter, when set, sees every regular file of at most FilterMax
	// bytes (filter.go); below are the layers under this one (top
	// first), where a file the filter drops may also be.
	filter Filter
	below  []string
}

// add writes the entry (or entries) for path p of the tree.
func (lw *layerWriter) add(p string) error {
	rel, err := filepath.Rel(lw.dir, p)
	if err != nil || rel == "." {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	hdr, skip, err := lw.header(p, rel, &st)
	if err != nil || skip {
		return err
	}
	data, drop, err := lw.filtered(p, rel, hdr)
	if err != nil {
		return err
	}
	if drop {
		return lw.dropped(rel, hdr.ModTime, [2]uint64{st.Dev, st.Ino})
	}
	opaque := addXattrs(hdr, p)
	if err := lw.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if opaque && lw.overlayForm {
		if err := lw.marker(filepath.Join(rel, whiteoutOpaque), hdr.ModTime); err != nil {
			return err
		}
	}
	if data != nil {
		_, err := lw.tw.Write(data)
		return err
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		return lw.content(p, hdr.Size)
	}
	return nil
}

// header is the tar header of rel; skip says it has no entry (sockets,
// device nodes) or that its entry (a whiteout) is already written.
func (lw *layerWriter) header(p, rel string, st *unix.Stat_t) (hdr *tar.Header, skip bool, err error) {
	hdr = &tar.Header{
		Name:     rel,
		Mode:     int64(st.Mode & 0o7777),
		Uid:      int(st.Uid),
		Gid:      int(st.Gid),
		ModTime:  timespecTime(st.Mtim),
		Format:   tar.FormatPAX,
		Typeflag: tar.TypeReg,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname, err = os.Readlink(p)
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFCHR, unix.S_IFBLK:
		if lw.overlayForm && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			err = lw.marker(filepath.Join(filepath.Dir(rel), whiteoutPrefix+filepath.Base(rel)), hdr.ModTime)
		}
		return nil, true, err
	case unix.S_IFSOCK:
		return nil, true, nil
	case unix.S_IFREG:
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := lw.links[key]; ok && st.Nlink > 1 {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
		} else {
			lw.links[key] = rel
			hdr.Size = st.Size
		}
	}
	return hdr, false, err
}

// marker writes an empty whiteout or opaque-directory marker.
func (lw *layerWriter) marker(name string, mtime time.Time) error {
	return lw.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg})
}

// content copies a regular file's bytes.
func (lw *layerWriter) content(p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyBuffer(lw.tw, io.LimitReader(f, size), lw.buf); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// addXattrs puts p's extended attributes in hdr, except overlay's own,
// and reports whether p is an opaque directory.
func addXattrs(hdr *tar.Header, p string) (opaque bool) {
	names, err := listXattrs(p)
	if err != nil || len(names) == 0 {
		return false
	}
	hdr.PAXRecords = map[string]string{}
	for _, n := range names {
		v, err := getXattr(p, n)
		if err != nil {
			continue
		}
		// Only this store's kind marks opaque: as root, user.overlay.*
		// is anybody's to set, and overlay does not read it.
		if userns.IsOverlayXattr(n) {
			opaque = opaque || (n == opaqueXattr() && string(v) == "y")
			continue
		}
		hdr.PAXRecords["SCHILY.xattr."+n] = string(v)
	}
	return opaque
}

func timespecTime(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }

func listXattrs(p string) ([]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		return nil, err
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range strings.Split(string(buf[:sz]), "\x00") {
		if n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}

func getXattr(p, name string) ([]byte, error) {
	sz, err := unix.Lgetxattr(p, name, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, sz)
	sz, err = unix.Lgetxattr(p, name, buf)
	return buf[:sz], err
}

// Export turns a stack of store layer directories (bottom first), and
// extra layers above them, into an OCI image with the given config: the
// reverse of Pull, for `devbox push`.
func Export(ctx context.Context, layerDirs []string, cfg Config, extra ...v1.Layer) (v1.Image, error) {
	return ExportFiltered(ctx, layerDirs, cfg, nil, extra...)
}

// ExportFiltered is Export with every regular file of the layer
// directories passed through filter (nil: none): what push publishes must
// not carry what the build keeps locally (see devenv/portable).
func ExportFiltered(ctx context.Context, layerDirs []string, cfg Config, filter Filter, extra ...v1.Layer) (v1.Image, error) {
	return exportImage(ctx, layerDirs, cfg, filter, nil, extra...)
}

// exportImage is ExportFiltered with the layers' options (compression).
func exportImage(ctx context.Context, layerDirs []string, cfg Config, filter Filter, opts []tarball.LayerOption, extra ...v1.Layer) (v1.Image, error) {
	var layers []v1.Layer
	for i, dir := range layerDirs {
		below := slices.Clone(layerDirs[:i])
		slices.Reverse(below)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			pr, pw := io.Pipe()
			lw := &layerWriter{tw: tar.NewWriter(pw), dir: dir, overlayForm: true,
				links: map[[2]uint64]string{}, buf: make([]byte, FilterMax), filter: filter, below: below}
			go func() { pw.CloseWithError(writeLayerTar(ctx, lw)) }()
			return pr, nil
		}, opts...)
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", dir, err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, append(layers, extra...)...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = HostPlatform().OS, HostPlatform().Architecture
	cf.Config, cf.Author = imageConfig(cfg), cfg.Author
	return mutate.ConfigFile(img, cf)
}

// imageConfig is cfg as an image config says it.
func imageConfig(cfg Config) v1.Config {
	return v1.Config{Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User, Cmd: cfg.Cmd, Entrypoint: cfg.Entrypoint,
		Labels: cfg.Labels, ExposedPorts: set(cfg.ExposedPorts), Volumes: set(cfg.Volumes),
		Shell: cfg.Shell, OnBuild: cfg.OnBuild, Healthcheck: cfg.Healthcheck, StopSignal: cfg.StopSignal}
}

// set is a config's set of names (ports, volumes), nil for none.
func set(names []string) map[string]struct{} {
	if len(names) == 0 {
		return nil
	}
	m := map[string]struct{}{}
	for _, n := range names {
		m[n] = struct{}{}
	}
	return m
}

// DiffID is the digest of the layer directory dir (overlay form) as the
// uncompressed tar that Export makes of it.
func DiffID(ctx context.Context, dir string) (string, error) {
	h := sha256.New()
	if err := WriteLayerTar(ctx, dir, h, true); err != nil {
		return "", fmt.Errorf("diffID of %s: %w", dir, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// Push exports a stack of layer directories (bottom first), through
// filter, and extra layers with cfg and writes the image to a registry reference.
func Push(ctx context.Context, layerDirs []string, cfg Config, ref string, insecure bool, filter Filter, extra ...v1.Layer) (v1.Hash, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	img, err := ExportFiltered(ctx, layerDirs, cfg, filter, extra...)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return img.Digest()
}
