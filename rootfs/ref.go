package rootfs

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
)

// Kind says where a base image comes from.
type Kind string

const (
	KindRegistry      Kind = "registry"
	KindOCI           Kind = "oci"
	KindDockerArchive Kind = "docker-archive"
	KindDir           Kind = "dir"
	KindDebootstrap   Kind = "debootstrap"
	// KindDockerfile is a Dockerfile that devenv/builder builds; the store
	// never resolves one itself.
	KindDockerfile Kind = "dockerfile"
)

// Ref is a parsed base reference: what the spec's `base` and
// `devbox image pull` accept.
type Ref struct {
	Kind Kind
	// Name is the registry reference (normalised, e.g.
	// index.docker.io/library/centos:7), or the path for oci:,
	// docker-archive: and dir:, or the suite for debootstrap:.
	Name string
	// Tag selects an image inside an OCI layout (oci:DIR:TAG).
	Tag string
	// Mirror is the Debian mirror for debootstrap:SUITE@MIRROR.
	Mirror string
	// Insecure allows plain HTTP to a registry that is not on loopback or
	// a private network.
	Insecure bool
}

// suiteRE is compiled on first use: the devbox binary is also every
// container's init, whose start-up should not pay for it.
var suiteRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9.-]*$`) })

// ParseRef parses a base reference. Relative paths are taken relative to
// dir (the spec's directory); dir may be empty.
func ParseRef(s, dir string) (Ref, error) {
	if s == "" {
		return Ref{}, fmt.Errorf("empty image reference")
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) || dir == "" {
			return p
		}
		return filepath.Join(dir, p)
	}
	for _, k := range []struct {
		kind       Kind
		need, form string // what must follow the colon
	}{{KindDockerArchive, "a file", "FILE"}, {KindDockerfile, "a file", "PATH"}, {KindDir, "a path", "PATH"}} {
		if p, ok := strings.CutPrefix(s, string(k.kind)+":"); ok {
			if p == "" {
				return Ref{}, fmt.Errorf("%q: %s: needs %s (%s:%s)", s, k.kind, k.need, k.kind, k.form)
			}
			return Ref{Kind: k.kind, Name: abs(p)}, nil
		}
	}
	switch {
	case strings.HasPrefix(s, "oci:"):
		rest := strings.TrimPrefix(s, "oci:")
		path, tag := rest, ""
		// The tag is after the last colon, unless that colon is part of the path.
		if i := strings.LastIndex(rest, ":"); i > 0 && !strings.Contains(rest[i+1:], "/") {
			path, tag = rest[:i], rest[i+1:]
		}
		if path == "" {
			return Ref{}, fmt.Errorf("%q: oci: needs a directory (oci:DIR[:TAG])", s)
		}
		return Ref{Kind: KindOCI, Name: abs(path), Tag: tag}, nil
	case strings.HasPrefix(s, "debootstrap:"):
		rest := strings.TrimPrefix(s, "debootstrap:")
		suite, mirror, _ := strings.Cut(rest, "@")
		if !suiteRE().MatchString(suite) {
			return Ref{}, fmt.Errorf("%q: debootstrap: needs a suite name such as bookworm (debootstrap:SUITE[@MIRROR])", s)
		}
		if mirror != "" && !strings.HasPrefix(mirror, "http://") && !strings.HasPrefix(mirror, "https://") && !strings.HasPrefix(mirror, "file:/") {
			return Ref{}, fmt.Errorf("%q: mirror must be an http(s):// or file:/ URL", s)
		}
		return Ref{Kind: KindDebootstrap, Name: suite, Mirror: mirror}, nil
	}
	r, err := name.ParseReference(s)
	if err != nil {
		return Ref{}, fmt.Errorf("%q: not an image reference: %w", s, err)
	}
	return Ref{Kind: KindRegistry, Name: r.Name()}, nil
}

// String is the canonical form of the reference; two refs with the same
// String are the same base.
func (r Ref) String() string {
	switch r.Kind {
	case KindRegistry:
		return r.Name
	case KindOCI:
		if r.Tag != "" {
			return "oci:" + r.Name + ":" + r.Tag
		}
		return "oci:" + r.Name
	case KindDebootstrap:
		if r.Mirror != "" {
			return "debootstrap:" + r.Name + "@" + r.Mirror
		}
		return "debootstrap:" + r.Name
	default:
		return string(r.Kind) + ":" + r.Name
	}
}

// isTree says the reference names a file tree rather than an image: it is
// stored as a one-layer image of its own.
func (r Ref) isTree() bool { return r.Kind == KindDir || r.Kind == KindDebootstrap }
