package lock

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/devbox/devbox/internal/safetext"
)

// FileName is the lock's name beside the spec.
const FileName = "devbox.lock"

// Version is the lock format's version.
const Version = 1

// File is devbox.lock.
type File struct {
	Version int `toml:"version"`
	// Build is the last step's cache key: the build as a whole.
	Build string `toml:"build"`
	// SourceDateEpoch is the time every file a build step writes is
	// clamped to, and what steps see as $SOURCE_DATE_EPOCH (seconds; 0:
	// none). Set once, when the lock is first written; nothing moves it
	// but an edit of the lock.
	SourceDateEpoch int64     `toml:"source_date_epoch,omitempty"`
	Base            Base      `toml:"base"`
	Node            *Node     `toml:"node,omitempty"`
	Packages        *Packages `toml:"packages,omitempty"`
	Steps           []Step    `toml:"steps"`
}

// Base is the base image as resolved.
type Base struct {
	Ref string `toml:"ref"`
	// Digest is the manifest digest of an image, or the digest of the
	// tree of a dir: or debootstrap: base.
	Digest string `toml:"digest"`
}

// Node is the Node.js and npm a node step installed, with where their
// tarballs came from and their digests ("sha256:…" or an npm integrity
// string, "sha512-…").
type Node struct {
	Version   string `toml:"version"`
	URL       string `toml:"url"`
	Digest    string `toml:"digest"`
	NPM       string `toml:"npm,omitempty"`
	NPMURL    string `toml:"npm_url,omitempty"`
	NPMDigest string `toml:"npm_digest,omitempty"`
}

// Packages are every package installed after the packages step, as
// NAME=VERSION, sorted.
type Packages struct {
	Manager   string   `toml:"manager"`
	Installed []string `toml:"installed"`
}

// Step is one build step: what it is, its cache key and the diffID of the
// layer it made.
type Step struct {
	Kind    string `toml:"kind"`
	Summary string `toml:"summary"`
	Key     string `toml:"key"`
	DiffID  string `toml:"diff_id,omitempty"`
}

// Path is the lock beside the spec file spec.
func Path(spec string) string { return filepath.Join(filepath.Dir(spec), FileName) }

// Read reads the lock at path; a missing lock is nil, no error.
func Read(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f File
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if keys := md.Undecoded(); len(keys) > 0 {
		return nil, fmt.Errorf("%s: unknown key %s", path, keys[0])
	}
	if f.Version != Version {
		return nil, fmt.Errorf("%s: version %d, this devbox reads version %d", path, f.Version, Version)
	}
	if f.SourceDateEpoch < 0 {
		return nil, fmt.Errorf("%s: source_date_epoch %d is before 1970", path, f.SourceDateEpoch)
	}
	if f.Packages != nil {
		for _, nv := range f.Packages.Installed {
			if !ValidPackage(nv) {
				return nil, fmt.Errorf("%s: packages.installed: %s is not NAME=VERSION", path, strconv.Quote(nv))
			}
		}
	}
	return &f, nil
}

// ValidPackage reports whether nv is NAME=VERSION in the characters
// package managers use (Debian's names with :arch, RPM's epochs and
// snapshot carets, apk's virtual packages' leading dot), at most 128
// each: a build puts them on a package manager's command line and in a
// script, and a lock is a cloned repository's file, so nothing else
// (space, quote, $, ;, newline) may pass.
func ValidPackage(nv string) bool {
	n, v, ok := strings.Cut(nv, "=")
	if !ok || n == "" || v == "" || len(n) > 128 || len(v) > 128 || !isAlnum(rune(v[0])) || !(isAlnum(rune(n[0])) || n[0] == '.') {
		return false
	}
	return strings.IndexFunc(n, func(r rune) bool { return !isAlnum(r) && !strings.ContainsRune("+-._:@", r) }) < 0 &&
		strings.IndexFunc(v, func(r rune) bool { return !isAlnum(r) && !strings.ContainsRune("+-._~:^", r) }) < 0
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// Bytes is the lock as written: a header line, then TOML.
func (f *File) Bytes() []byte {
	if f.Packages != nil {
		sort.Strings(f.Packages.Installed)
	}
	var b bytes.Buffer
	b.WriteString("# devbox.lock: what devbox.toml resolved to. Written by devbox build and up;\n# commit it. `devbox lock --update` resolves afresh.\n")
	enc := toml.NewEncoder(&b)
	enc.Indent = ""
	enc.Encode(f) // a File always encodes
	return b.Bytes()
}

// Write writes the lock to path atomically.
func (f *File) Write(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, f.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Equal reports whether two locks say the same.
func Equal(a, b *File) bool {
	if a == nil || b == nil {
		return a == b
	}
	return bytes.Equal(a.Bytes(), b.Bytes())
}

// Diff lists what changes from old to new, one readable line each:
// "- node 20.18.0", "+ node 20.19.1", "~ step 4 run make: key …".
func Diff(old, new *File) []string {
	before, after := lines(old), lines(new)
	var out []string
	for _, l := range before {
		if !slices.Contains(after, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range after {
		if !slices.Contains(before, l) {
			out = append(out, "+ "+l)
		}
	}
	return out
}

// lines are a lock's facts, one per line, for Diff.
func lines(f *File) []string {
	if f == nil {
		return nil
	}
	l := []string{"base " + f.Base.Ref + " " + f.Base.Digest}
	if f.SourceDateEpoch != 0 {
		l = append(l, fmt.Sprintf("source_date_epoch %d", f.SourceDateEpoch))
	}
	if n := f.Node; n != nil {
		l = append(l, "node "+n.Version+" "+n.Digest)
		if n.NPM != "" {
			l = append(l, "npm "+n.NPM+" "+n.NPMDigest)
		}
	}
	if p := f.Packages; p != nil {
		for _, i := range p.Installed {
			l = append(l, "package "+i)
		}
	}
	for i, s := range f.Steps {
		l = append(l, fmt.Sprintf("step %d %s %s: %s", i+1, s.Kind, strings.TrimPrefix(s.Summary, s.Kind+" "), s.Key[:min(12, len(s.Key))]))
		if s.DiffID != "" {
			// A layer that differs with the same key shows as such.
			l = append(l, fmt.Sprintf("step %d layer %s", i+1, s.DiffID))
		}
	}
	// A lock is a cloned repository's file, or holds what a build record
	// said: its lines are printed escaped.
	for i := range l {
		l[i] = safetext.Escape(l[i])
	}
	return l
}

// Installed returns the pinned version of package name, if any.
func (f *File) Installed(name string) (string, bool) {
	if f == nil || f.Packages == nil {
		return "", false
	}
	for _, i := range f.Packages.Installed {
		if n, v, ok := strings.Cut(i, "="); ok && n == name {
			return v, true
		}
	}
	return "", false
}

// StepByKey returns the locked step with cache key key.
func (f *File) StepByKey(key string) (Step, bool) {
	if f != nil {
		for _, s := range f.Steps {
			if s.Key == key {
				return s, true
			}
		}
	}
	return Step{}, false
}
