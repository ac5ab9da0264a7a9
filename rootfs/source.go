package rootfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// HostPlatform is the platform images are pulled for.
func HostPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}
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
		ropts := []remote.Option{
			remote.WithContext(ctx),
			remote.WithAuthFromKeychain(authn.DefaultKeychain),
			remote.WithPlatform(HostPlatform()),
		}
		if opts.Transport != nil {
			ropts = append(ropts, remote.WithTransport(opts.Transport))
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

// debootstrap builds a minimal Debian root filesystem of suite into dir.
func debootstrap(ctx context.Context, suite, mirror, dir string, log func(string)) error {
	bin, err := exec.LookPath("debootstrap")
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
