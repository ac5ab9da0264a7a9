package builder

import (
	"errors"
	"maps"
	"slices"

	"github.com/devbox/devbox/devenv/spec"

	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/devbox/devbox/devenv/lock"
	"github.com/devbox/devbox/rootfs"
)

// nodeArch is Node.js's name for the host's architecture.
func nodeArch() string {
	if goruntime.GOARCH == "amd64" {
		return "x64"
	}
	return goruntime.GOARCH
}

// npmPackument is the abbreviated npm registry metadata of a package.
type npmPackument struct {
	Versions map[string]struct {
		Dist npmDist `json:"dist"`
	} `json:"versions"`
}

// npmDist is where a package version's tarball is and its integrity.
type npmDist struct {
	Tarball   string `json:"tarball"`
	Integrity string `json:"integrity"`
}

func registryURL(registry, pkg string) string {
	return strings.TrimSuffix(registry, "/") + "/" + pkg
}

// installNode puts Node.js (and npm) under layer/usr/local: from the npm
// registry's node-linux-ARCH package (plus the npm package), or from a
// nodejs.org-style mirror's tar.xz checked against SHASUMS256.txt. It
// returns the exact version installed.
// With pin (from devbox.lock) it installs exactly the pinned version and
// refuses tarballs whose digests are not the pinned ones. It returns what
// it installed, for the lock.
func installNode(ctx context.Context, d *downloads, s *spec.Spec, musl bool, layer string, pin *lock.Node) (*lock.Node, error) {
	local := filepath.Join(layer, "usr", "local")
	if err := os.MkdirAll(local, 0o755); err != nil {
		return nil, err
	}
	if s.Node.Mirror == "npm" {
		if musl {
			return nil, fmt.Errorf("node: the base uses musl (Alpine) and the npm registry's node-linux-%s is built for glibc; set [node] mirror to one with musl builds", nodeArch())
		}
		return installNodeFromNPM(ctx, d, s, local, pin)
	}
	return installNodeFromMirror(ctx, d, s, musl, local, pin)
}

// checkPin refuses a digest other than the lock's.
func checkPin(what, got, pinned string) error {
	if pinned != "" && got != pinned {
		return fmt.Errorf("%s: the source now gives digest %s, devbox.lock pins %s: the release was replaced (devbox lock --update accepts it)", what, got, pinned)
	}
	return nil
}

func installNodeFromNPM(ctx context.Context, d *downloads, s *spec.Spec, local string, pin *lock.Node) (*lock.Node, error) {
	reg := s.NPMRegistry()
	want, wantNPM, pinNode, pinNPM := s.Node.Version, "", "", ""
	if pin != nil {
		want, wantNPM, pinNode, pinNPM = pin.Version, pin.NPM, pin.Digest, pin.NPMDigest
	}
	version, dist, err := npmRelease(ctx, d, reg, "node-linux-"+nodeArch(), want, pinNode, local, "")
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", want, err)
	}
	// The node package has no npm: add the npm of that Node's era.
	if wantNPM == "" {
		wantNPM = npmMajorFor(version)
	}
	npmVersion, nd, err := npmRelease(ctx, d, reg, "npm", wantNPM, pinNPM, local, "lib/node_modules/npm")
	if err != nil {
		return nil, fmt.Errorf("npm for node %s: %w", version, err)
	}
	bin := filepath.Join(local, "bin")
	for name, target := range map[string]string{"npm": "npm-cli.js", "npx": "npx-cli.js"} {
		os.Remove(filepath.Join(bin, name))
		if err := os.Symlink("../lib/node_modules/npm/bin/"+target, filepath.Join(bin, name)); err != nil {
			return nil, err
		}
		os.Chmod(filepath.Join(local, "lib/node_modules/npm/bin", target), 0o755)
	}
	os.Chmod(filepath.Join(bin, "node"), 0o755)
	d.log(fmt.Sprintf("node %s with npm %s from %s", version, npmVersion, reg))
	return &lock.Node{Version: version, URL: dist.Tarball, Digest: dist.Integrity, NPM: npmVersion, NPMURL: nd.Tarball, NPMDigest: nd.Integrity}, nil
}

// npmRelease resolves want among the versions of the npm registry's
// package pkg, refuses a tarball whose integrity is not pinned (when
// pinned is set), and unpacks it into dir/sub.
func npmRelease(ctx context.Context, d *downloads, reg, pkg, want, pinned, dir, sub string) (string, npmDist, error) {
	var meta npmPackument
	if err := d.getJSON(ctx, registryURL(reg, pkg), &meta, "application/vnd.npm.install-v1+json"); err != nil {
		return "", npmDist{}, err
	}
	version, err := resolveVersion(want, slices.Collect(maps.Keys(meta.Versions)))
	if err != nil {
		return "", npmDist{}, fmt.Errorf("%w in %s", err, registryURL(reg, pkg))
	}
	dist := meta.Versions[version].Dist
	if err := checkPin(pkg+" "+version, dist.Integrity, pinned); err != nil {
		return "", npmDist{}, err
	}
	if err := fetchPackage(ctx, d, dist.Tarball, dist.Integrity, dir, sub); err != nil {
		return "", npmDist{}, fmt.Errorf("%s %s: %w", pkg, version, err)
	}
	return version, dist, nil
}

// npmMajorFor is the npm major that shipped with a Node major, so that
// npm runs on it (npm's own engines field says the same).
func npmMajorFor(nodeVersion string) string {
	major, _ := strconv.Atoi(strings.SplitN(nodeVersion, ".", 2)[0])
	switch {
	case major <= 15:
		return "6"
	case major <= 17:
		return "8"
	case major <= 19:
		return "9"
	}
	return "10"
}

// fetchPackage downloads an npm tarball, checks its integrity and unpacks
// its package/ directory into dir/sub.
func fetchPackage(ctx context.Context, d *downloads, url, integrity, dir, sub string) error {
	want, err := integrityDigest(integrity)
	if err != nil {
		return err
	}
	file, err := d.fetch(ctx, url, want)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	dst := filepath.Join(dir, sub)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	return extractRenamed(zr, dst, func(name string) (string, bool) {
		rest, ok := strings.CutPrefix(path.Clean(name), "package/")
		if !ok || rest == "package.json" && sub == "" || rest == "LICENSE" && sub == "" || rest == "README.md" && sub == "" {
			return "", false
		}
		return rest, true
	})
}

func installNodeFromMirror(ctx context.Context, d *downloads, s *spec.Spec, musl bool, local string, pin *lock.Node) (*lock.Node, error) {
	mirror := strings.TrimSuffix(s.Node.Mirror, "/")
	want := s.Node.Version
	if pin != nil {
		want = pin.Version
	}
	version, err := mirrorVersion(ctx, d, mirror, want)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", want, err)
	}
	platform := "linux-" + nodeArch()
	if musl {
		platform += "-musl"
	}
	file := fmt.Sprintf("node-v%s-%s.tar.xz", version, platform)
	sum, err := mirrorChecksum(ctx, d, mirror, version, file)
	if err != nil {
		if musl && errors.Is(err, errNotListed) {
			return nil, fmt.Errorf("node %s: %s has no musl build (%s) for this Alpine base", version, mirror, file)
		}
		return nil, fmt.Errorf("node %s: %w", version, err)
	}
	if pin != nil {
		if err := checkPin("node "+version, "sha256:"+sum, pin.Digest); err != nil {
			return nil, err
		}
	}
	url := fmt.Sprintf("%s/v%s/%s", mirror, version, file)
	archive, err := d.fetch(ctx, url, digest{"sha256", sum})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", version, err)
	}
	if err := extractNodeTarXz(ctx, archive, strings.TrimSuffix(file, ".tar.xz")+"/", local); err != nil {
		return nil, err
	}
	d.log(fmt.Sprintf("node %s from %s", version, mirror))
	return &lock.Node{Version: version, URL: url, Digest: "sha256:" + sum}, nil
}

// mirrorVersion resolves "lts" or a major to an exact version with the
// mirror's index.json; an exact version is itself.
func mirrorVersion(ctx context.Context, d *downloads, mirror, version string) (string, error) {
	if spec.IsExactVersion(version) {
		return version, nil
	}
	var index []struct {
		Version string `json:"version"`
		LTS     any    `json:"lts"`
	}
	if err := d.getJSON(ctx, mirror+"/index.json", &index, ""); err != nil {
		return "", fmt.Errorf("resolve: %w", err)
	}
	var vs []string
	for _, e := range index {
		if lts, _ := e.LTS.(string); version != "lts" || lts != "" {
			vs = append(vs, strings.TrimPrefix(e.Version, "v"))
		}
	}
	want := version
	if version == "lts" {
		want = "*"
	}
	return resolveVersion(want, vs)
}

var errNotListed = errors.New("not listed")

// mirrorChecksum is file's sha256 from the release's SHASUMS256.txt.
func mirrorChecksum(ctx context.Context, d *downloads, mirror, version, file string) (string, error) {
	url := fmt.Sprintf("%s/v%s/SHASUMS256.txt", mirror, version)
	sums, err := d.getText(ctx, url)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(sums, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == file {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("%s is %w in %s", file, errNotListed, url)
}

// extractNodeTarXz unpacks a release tarball's top directory into local,
// without the release's own docs.
func extractNodeTarXz(ctx context.Context, archive, top, local string) error {
	// xz on the host (xz-utils is one of devbox's host packages).
	xz := exec.CommandContext(ctx, "xz", "-dc", archive)
	out, err := xz.StdoutPipe()
	if err != nil {
		return err
	}
	if err := xz.Start(); err != nil {
		return fmt.Errorf("node: xz: %w (apt-get install xz-utils)", err)
	}
	err = extractRenamed(out, local, func(name string) (string, bool) {
		rest, ok := strings.CutPrefix(path.Clean(name)+"/", top)
		rest = strings.TrimSuffix(rest, "/")
		if !ok || rest == "" || rest == "CHANGELOG.md" || rest == "LICENSE" || rest == "README.md" {
			return "", false
		}
		return rest, true
	})
	if werr := xz.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("node: xz: %w", werr)
	}
	return err
}

// extractRenamed unpacks the entries of a tar stream that rename keeps,
// under their new names, safely into dir.
func extractRenamed(r io.Reader, dir string, rename func(string) (string, bool)) error {
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(r)
		tw := tar.NewWriter(pw)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			name, keep := rename(hdr.Name)
			if !keep {
				continue
			}
			hdr.Name = name
			if hdr.Typeflag == tar.TypeLink {
				if hdr.Linkname, keep = rename(hdr.Linkname); !keep {
					continue
				}
			}
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	err := rootfs.ExtractTar(pr, dir, nil)
	pr.CloseWithError(err)
	return err
}

// resolveVersion picks the exact version for want: itself if exact, the
// newest of a major ("20"), or the newest of all ("*").
func resolveVersion(want string, versions []string) (string, error) {
	want = strings.TrimPrefix(want, "v")
	type semver struct {
		s       string
		a, b, c int
	}
	var cands []semver
	for _, v := range versions {
		parts := strings.Split(v, ".")
		if len(parts) != 3 || strings.ContainsAny(v, "-+") {
			continue // no pre-releases
		}
		a, e1 := strconv.Atoi(parts[0])
		b, e2 := strconv.Atoi(parts[1])
		c, e3 := strconv.Atoi(parts[2])
		if e1 != nil || e2 != nil || e3 != nil {
			continue
		}
		if v == want {
			return v, nil
		}
		if want == "*" || parts[0] == want {
			cands = append(cands, semver{v, a, b, c})
		}
	}
	if len(cands) == 0 || spec.IsExactVersion(want) {
		return "", errNoVersion
	}
	sort.Slice(cands, func(i, j int) bool {
		x, y := cands[i], cands[j]
		if x.a != y.a {
			return x.a > y.a
		}
		if x.b != y.b {
			return x.b > y.b
		}
		return x.c > y.c
	})
	return cands[0].s, nil
}
