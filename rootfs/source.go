package rootfs

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/devbox/devbox/internal/idle"
	"github.com/devbox/devbox/runtime/userns"
)

// HostPlatform is the platform images are pulled for.
func HostPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}
}

// source is an image ready to be stored, whatever kind of reference it
// came from: its layers by diffID (bottom first) and how to read each.
type source struct {
	digest  string // the manifest's digest, or a tree's diffID
	config  Config
	diffIDs []v1.Hash
	size    int64 // compressed bytes; -1 for a tree (its tar size is used)
	// open returns layer i's stream (compressed or not) and its size (-1
	// if unknown).
	open func(i int) (io.ReadCloser, int64, error)
	// stored is the image already in the store, when it is up to date.
	stored *Image
}

// openSource resolves src; dst is where its record will be stored, so an
// image already stored there with the same digest needs nothing more.
func (s *Store) openSource(ctx context.Context, src, dst Ref, opts PullOptions) (so *source, cleanup func(), err error) {
	if src.isTree() {
		return s.treeSource(ctx, src, dst, opts)
	}
	img, uncompressed, err := openImage(ctx, src, opts)
	if err != nil {
		return nil, nil, err
	}
	so, err = imageSource(img, uncompressed)
	if err != nil {
		return nil, nil, err
	}
	if old, err := s.Image(dst); err == nil && old.Digest == so.digest && s.complete(old) {
		so.stored = old
	}
	return so, func() {}, nil
}

// imageSource reads a v1.Image's layers.
func imageSource(img v1.Image, uncompressed bool) (*source, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("image has %d layers but %d diffIDs", len(layers), len(cf.RootFS.DiffIDs))
	}
	so := &source{digest: digest.String(), config: configOf(cf), diffIDs: cf.RootFS.DiffIDs}
	for _, l := range layers {
		if n, err := l.Size(); err == nil {
			so.size += n
		}
	}
	so.open = func(i int) (io.ReadCloser, int64, error) {
		l := layers[i]
		if uncompressed {
			rc, err := l.Uncompressed()
			return rc, -1, err
		}
		n, err := l.Size()
		if err != nil {
			n = -1
		}
		rc, err := l.Compressed()
		return rc, n, err
	}
	return so, nil
}

// treeSource takes a directory (dir:) or a fresh debootstrap
// (debootstrap:) in as a one-layer image. The tree is read as a layer tar
// twice, once to learn its diffID and once to unpack it, so that it is
// named by its content and unpacked as safely as any layer. (A v1.Image
// would have go-containerregistry gzip the whole tree just to name it.)
func (s *Store) treeSource(ctx context.Context, src, dst Ref, opts PullOptions) (*source, func(), error) {
	if old := s.storedTree(dst, opts); old != nil {
		return &source{stored: old}, func() {}, nil
	}
	dir, cleanup, err := s.tree(ctx, src, dst, opts)
	if err != nil {
		return nil, nil, err
	}
	if dir == "" { // a concurrent devbox made it while we waited
		cleanup()
		return &source{stored: s.storedTree(dst, opts)}, func() {}, nil
	}
	h := sha256.New()
	if err := WriteLayerTar(ctx, dir, h, false); err != nil {
		cleanup()
		return nil, nil, err
	}
	diffID := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	so := &source{
		digest:  diffID.String(),
		config:  Config{Env: []string{"PATH=" + defaultPath}},
		diffIDs: []v1.Hash{diffID},
		size:    -1,
		open: func(int) (io.ReadCloser, int64, error) {
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(WriteLayerTar(ctx, dir, pw, false)) }()
			return pr, -1, nil
		},
	}
	return so, cleanup, nil
}

// defaultPath is the PATH of a tree image, which has no config of its own.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// storedTree is the image stored for a tree reference, which is taken in
// once, until Refresh asks for it again.
func (s *Store) storedTree(dst Ref, opts PullOptions) *Image {
	if old, err := s.Image(dst); err == nil && !opts.Refresh && s.complete(old) {
		return old
	}
	return nil
}

// tree is the directory a tree reference names: the directory itself, or
// a debootstrap made in tmp/ (removed by cleanup); "" when a concurrent
// debootstrap of the same suite stored it meanwhile.
func (s *Store) tree(ctx context.Context, src, dst Ref, opts PullOptions) (dir string, cleanup func(), err error) {
	if src.Kind == KindDir {
		fi, err := os.Stat(src.Name)
		if err != nil {
			return "", nil, err
		}
		if !fi.IsDir() {
			return "", nil, fmt.Errorf("%s is not a directory", src.Name)
		}
		return src.Name, func() {}, nil
	}
	unlock, err := s.lock("debootstrap-" + src.Name)
	if err != nil {
		return "", nil, err
	}
	if s.storedTree(dst, opts) != nil {
		return "", unlock, nil
	}
	tmp, err := os.MkdirTemp(s.root.Tmp(), "debootstrap-")
	if err != nil {
		unlock()
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(tmp); unlock() }
	opts.Log(fmt.Sprintf("debootstrap %s (minbase) from %s", src.Name, cmp.Or(src.Mirror, "Debian's default mirror")))
	if err := debootstrap(ctx, src.Name, src.Mirror, tmp, opts.Log); err != nil {
		cleanup()
		return "", nil, err
	}
	// Leave nothing of the host's behind in the image.
	os.Remove(filepath.Join(tmp, "etc", "hostname"))
	return tmp, cleanup, nil
}

// openImage resolves a registry, oci: or docker-archive: reference to an
// image. uncompressed says its layers are best read uncompressed (a
// docker-archive's layers are usually stored that way, and compressing
// them only to decompress again would waste the time).
func openImage(ctx context.Context, ref Ref, opts PullOptions) (img v1.Image, uncompressed bool, err error) {
	switch ref.Kind {
	case KindRegistry:
		var nopts []name.Option
		if ref.Insecure || opts.Insecure {
			nopts = append(nopts, name.Insecure)
		}
		r, err := name.ParseReference(ref.Name, nopts...)
		if err != nil {
			return nil, false, err
		}
		base := opts.Transport
		if base == nil {
			base = remote.DefaultTransport
		}
		ropts := []remote.Option{
			remote.WithContext(ctx),
			remote.WithAuthFromKeychain(authn.DefaultKeychain),
			remote.WithPlatform(HostPlatform()),
			// A registry that stops sending mid-blob fails the pull
			// instead of hanging it; the layers already in place stay.
			remote.WithTransport(idle.Transport(base, opts.IdleTimeout)),
		}
		img, err := remote.Image(r, ropts...)
		return img, false, err
	case KindOCI:
		img, err := ociImage(ref)
		return img, false, err
	case KindDockerArchive:
		if _, err := os.Stat(ref.Name); err != nil {
			return nil, false, err
		}
		img, err := tarball.ImageFromPath(ref.Name, nil)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w (an archive with several images is not supported; docker save one)", ref.Name, err)
		}
		return img, true, nil
	}
	return nil, false, fmt.Errorf("%s is not an image source", ref.Kind)
}

// ociImage picks the image of an OCI layout: the one tagged ref.Tag
// (org.opencontainers.image.ref.name), or the only one.
func ociImage(ref Ref) (v1.Image, error) {
	p, err := layout.FromPath(ref.Name)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var picked []v1.Descriptor
	for _, d := range im.Manifests {
		refName := d.Annotations["org.opencontainers.image.ref.name"]
		if ref.Tag == "" || refName == ref.Tag || strings.HasSuffix(refName, ":"+ref.Tag) {
			picked = append(picked, d)
		}
	}
	switch {
	case len(picked) == 0 && ref.Tag != "":
		return nil, fmt.Errorf("%s: no image tagged %q", ref.Name, ref.Tag)
	case len(picked) == 0:
		return nil, fmt.Errorf("%s: the layout holds no image", ref.Name)
	case len(picked) > 1:
		return nil, fmt.Errorf("%s: the layout holds %d images; name one as oci:DIR:TAG", ref.Name, len(picked))
	}
	d := picked[0]
	if d.MediaType.IsIndex() {
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		cm, err := child.IndexManifest()
		if err != nil {
			return nil, err
		}
		want := HostPlatform()
		for _, c := range cm.Manifests {
			if c.Platform != nil && c.Platform.Satisfies(want) {
				return child.Image(c.Digest)
			}
		}
		return nil, fmt.Errorf("%s: no image for %s/%s", ref.Name, want.OS, want.Architecture)
	}
	return idx.Image(d.Digest)
}

// adminTool finds an administrator's command on PATH or in the sbin
// directories, where Debian puts debootstrap and which an ordinary user's
// PATH lacks (rootless devbox runs it as root of its own namespace).
func adminTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
		if fi, err := os.Stat(dir + "/" + name); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return dir + "/" + name, nil
		}
	}
	return "", exec.ErrNotFound
}

// debootstrap builds a minimal Debian root filesystem of suite into dir.
func debootstrap(ctx context.Context, suite, mirror, dir string, log func(string)) error {
	bin, err := adminTool("debootstrap")
	if err != nil {
		return errors.New("debootstrap is not installed (apt-get install debootstrap)")
	}
	if os.Geteuid() != 0 {
		return errors.New("debootstrap: bases need root")
	}
	args := []string{"--variant=minbase", suite, dir}
	if mirror != "" {
		args = append(args, mirror)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	// debootstrap runs chroot and others from the sbin directories.
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/local/sbin:/usr/sbin:/sbin")
	if !userns.Initial() {
		// Rootless: no device nodes can be made, and debootstrap binds the
		// host's instead when it believes it runs in LXC.
		cmd.Env = append(cmd.Env, "container=lxc")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		return fmt.Errorf("debootstrap %s: %w\n%s", suite, err, strings.Join(lines, "\n"))
	}
	log(fmt.Sprintf("debootstrap %s: done", suite))
	return nil
}
