package dockerfile

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"unicode"

	"github.com/moby/patternmatcher"
)

// RemoteFile is an ADD source downloaded on the host: an http or https
// URL, and the name BuildKit gives the file.
type RemoteFile struct {
	URL, Name string
}

// Source kinds of an ADD, as BuildKit tells them apart
// (dockerfile2llb/convert_copy.go isHTTPSource and isGitSource, over
// frontend/dockerfile/dfgitutil ParseGitRef).
const (
	sourceLocal = iota
	sourceHTTP
	sourceGit
	sourceOtherURL
)

var (
	schemeRE = regexp.MustCompile(`^[a-zA-Z0-9]+://`)
	// scpRE is util/sshutil's gitSSHRegex: user@host:path is git over
	// SSH.
	scpRE = regexp.MustCompile(`^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):(.*?)(?:\?(.*?))?(?:#(.*))?$`)
)

// sourceKind says what an ADD source is. As in util/gitutil ParseURL, an
// http(s) URL is git only when its path ends in ".git"; ssh:// and git://
// are git; another scheme is neither (BuildKit would look for it in the
// context, where it is not).
func sourceKind(src string) int {
	if proto := schemeRE.FindString(src); proto != "" {
		switch strings.ToLower(strings.TrimSuffix(proto, "://")) {
		case "http", "https":
			if u, err := url.Parse(src); err == nil && strings.HasSuffix(u.Path, ".git") {
				return sourceGit
			}
			return sourceHTTP
		case "ssh", "git":
			return sourceGit
		}
		return sourceOtherURL
	}
	if scpRE.MatchString(src) {
		return sourceGit
	}
	return sourceLocal
}

// remoteName is the name a downloaded file gets: the URL path's last
// element, as dispatchCopy gives llb.Filename (a Content-Disposition is
// not looked at, since the name is set), made safe as
// source/util/pathutil SafeFileName does.
func remoteName(src string) string {
	name := "__unnamed__"
	if u, err := url.Parse(src); err == nil {
		if base := path.Base(u.Path); base != "." && base != "/" {
			name = base
		}
	}
	name = path.Base(strings.TrimSpace(name))
	if name == "" || name == "." || name == ".." || strings.IndexFunc(name, func(r rune) bool { return r == 0 || unicode.IsControl(r) }) >= 0 {
		return "download"
	}
	return name
}

// checksumLen are the digests go-digest's Parse accepts, by their hex
// length.
var checksumLen = map[string]int{"sha256": 64, "sha384": 96, "sha512": 128}

// checkChecksum validates ADD --checksum as BuildKit does (dispatchCopy):
// one source, which is a URL, and a well-formed digest.
func checkChecksum(sum string, sources []string) error {
	if len(sources) != 1 {
		return fmt.Errorf("--checksum can't be specified for multiple sources")
	}
	if k := sourceKind(sources[0]); k != sourceHTTP && k != sourceGit {
		return fmt.Errorf("--checksum requires an HTTP(S) source, not %s", sources[0])
	}
	algo, hex, ok := strings.Cut(sum, ":")
	n, known := checksumLen[algo]
	switch {
	case !ok:
		return fmt.Errorf("--checksum=%s: want ALGORITHM:HEX, as sha256:…", sum)
	case !known:
		return fmt.Errorf("--checksum=%s: unsupported algorithm %q (sha256, sha384 or sha512)", sum, algo)
	case len(hex) != n || strings.Trim(hex, "0123456789abcdef") != "":
		return fmt.Errorf("--checksum=%s: %s is %d lowercase hex digits", sum, algo, n)
	}
	return nil
}

// checkExclude validates --exclude's patterns as the copy will read them
// (patternmatcher, as tonistiigi/fsutil copy's ExcludePatterns).
func checkExclude(patterns []string) error {
	if _, err := patternmatcher.New(patterns); err != nil {
		return fmt.Errorf("--exclude: %w", err)
	}
	return nil
}

// addSources splits an ADD's sources into local paths and downloads,
// refusing git and other schemes.
func addSources(sources []string) (local []string, remote []RemoteFile, err error) {
	for _, src := range sources {
		switch sourceKind(src) {
		case sourceLocal:
			local = append(local, src)
		case sourceHTTP:
			remote = append(remote, RemoteFile{URL: src, Name: remoteName(src)})
		case sourceGit:
			return nil, nil, fmt.Errorf("%s: ADD from git is not supported: devbox would have to clone on the host with its git, keys and credentials, "+
				"and BuildKit's ref, subdir, submodule and --keep-git-dir semantics; clone in a RUN step", src)
		default:
			return nil, nil, fmt.Errorf("%s: ADD downloads only http:// and https:// URLs", src)
		}
	}
	return local, remote, nil
}

// checkCopySources refuses a COPY of a URL or git source, as
// dispatchCopy does ("source can't be a URL for COPY").
func checkCopySources(sources []string) error {
	for _, src := range sources {
		switch sourceKind(src) {
		case sourceHTTP, sourceOtherURL:
			return fmt.Errorf("%s: source can't be a URL for COPY; ADD downloads http(s) URLs", src)
		case sourceGit:
			return fmt.Errorf("%s: source can't be a git ref for COPY", src)
		}
	}
	return nil
}
