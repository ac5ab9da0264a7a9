package builder

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/patternmatcher"

	"github.com/devbox/devbox/devenv/spec/dockerfile"
)

// copyFilter is what COPY --parents and --exclude keep of a source
// directory, matched against each entry's path relative to it as
// tonistiigi/fsutil's copy does (copy/copy.go, copier.copy, which
// BuildKit's file op calls with the action's IncludePatterns and
// ExcludePatterns: solver/llbsolver/file/backend.go docopy). The source
// itself is never matched: `COPY --exclude=*.txt a.txt /` copies a.txt,
// a wildcard's matches are copied whole, and the patterns reach only
// what is inside a directory.
type copyFilter struct {
	include, exclude *patternmatcher.PatternMatcher
}

func newCopyFilter(include, exclude []string) (*copyFilter, error) {
	f := &copyFilter{}
	var err error
	if len(include) > 0 {
		if f.include, err = patternmatcher.New(include); err != nil {
			return nil, err
		}
	}
	if len(exclude) > 0 {
		if f.exclude, err = patternmatcher.New(exclude); err != nil {
			return nil, fmt.Errorf("--exclude: %w", err)
		}
	}
	return f, nil
}

// sourceMatches are the trees and files a COPY or ADD source names, each
// with the filter its copy applies. With --parents the source is split as
// dispatchCopy does (dockerfile2llb/convert_copy.go): at its first "/./"
// into the directory copied from and a pattern kept under the
// destination with its parents, else the pattern is the whole source
// from the root; a pattern without wildcards must exist (RequiredPaths).
func sourceMatches(ds *dockerfile.Step, src string, matches func(string) ([]match, error)) ([]match, error) {
	include := []string(nil)
	if ds.Parents {
		parent, pattern, ok := strings.Cut(src, "/./")
		if !ok {
			parent, pattern = "/", src
		}
		pattern = strings.TrimPrefix(path.Clean("/"+pattern), "/")
		if !hasWildcard(parent) && !hasWildcard(pattern) {
			if _, err := matches(path.Join(parent, pattern)); err != nil {
				return nil, err
			}
		}
		src, include = parent, []string{pattern}
	}
	ms, err := matches(src)
	if err != nil || (len(include) == 0 && len(ds.Exclude) == 0) {
		return ms, err
	}
	f, err := newCopyFilter(include, ds.Exclude)
	if err != nil {
		return nil, err
	}
	for i := range ms {
		ms[i].filter = f
	}
	return ms, nil
}

// hasWildcard is dispatchCopy's containsWildcards.
func hasWildcard(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[':
			return true
		case '\\':
			i++
		}
	}
	return false
}

// filteredWalk walks the tree at top as fsutil's copier.copy does:
// visit gets each entry below top that the filter keeps (kept), and the
// directories it walks into without keeping them (an include pattern or
// an exclusion's "!" may keep something below them), parents first, in
// name order. ignored leaves out entries by path (.dockerignore).
func (f *copyFilter) walk(top string, ignored func(string) bool, visit func(p, rel string, fi fs.FileInfo, kept bool) error) error {
	return f.walkDir(top, "", patternmatcher.MatchInfo{}, patternmatcher.MatchInfo{}, ignored, visit)
}

func (f *copyFilter) walkDir(dir, rel string, incInfo, excInfo patternmatcher.MatchInfo, ignored func(string) bool, visit func(p, rel string, fi fs.FileInfo, kept bool) error) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p, r := filepath.Join(dir, e.Name()), path.Join(rel, e.Name())
		if ignored != nil && ignored(p) {
			continue
		}
		keep, excluded := true, false
		inc, exc := incInfo, excInfo
		if f.include != nil {
			if keep, inc, err = f.include.MatchesUsingParentResults(r, incInfo); err != nil {
				return err
			}
		}
		if f.exclude != nil {
			var m bool
			if m, exc, err = f.exclude.MatchesUsingParentResults(r, excInfo); err != nil {
				return err
			}
			keep, excluded = keep && !m, m
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		// What neither pattern keeps is gone, unless a directory may hold
		// what an include pattern or an exclusion's "!" keeps.
		mayKeepBelow := f.include != nil || (f.exclude != nil && f.exclude.Exclusions())
		if !keep && (!fi.IsDir() || !mayKeepBelow) {
			continue
		}
		if err := visit(p, r, fi, keep); err != nil {
			return err
		}
		if fi.IsDir() && (!excluded || f.exclude.Exclusions()) {
			if err := f.walkDir(p, r, inc, exc, ignored, visit); err != nil {
				return err
			}
		}
	}
	return nil
}

// walkKept calls visit for what f keeps below top, each after the
// directories above it that f walked into without keeping (once each):
// those are made from their source only when something below them is
// copied, as fsutil's copier.createParentDirs does.
func (f *copyFilter) walkKept(top string, ignored func(string) bool, visit func(p, rel string, fi fs.FileInfo) error) error {
	type pending struct {
		p, rel string
		fi     fs.FileInfo
	}
	var waiting []pending
	return f.walk(top, ignored, func(p, rel string, fi fs.FileInfo, kept bool) error {
		// Only the directories above rel still wait.
		waiting = slices.DeleteFunc(waiting, func(w pending) bool { return !strings.HasPrefix(rel, w.rel+"/") })
		if !kept {
			waiting = append(waiting, pending{p, rel, fi})
			return nil
		}
		for _, w := range waiting {
			if err := visit(w.p, w.rel, w.fi); err != nil {
				return err
			}
		}
		waiting = waiting[:0]
		return visit(p, rel, fi)
	})
}

// filteredTree copies what f keeps of dir into dest.
func (c *copier) filteredTree(dir, dest string, f *copyFilter) error {
	if err := mkdirIn(c.root, dest, c.dirUID, c.dirGID); err != nil {
		return err
	}
	return f.walkKept(dir, c.src.ignored, func(p, rel string, _ fs.FileInfo) error {
		return c.entry(p, path.Join(dest, rel))
	})
}

// hashFiltered hashes what m's filter keeps of its tree, as hashTree
// does a whole tree: a change to what is left out re-runs nothing.
func (bc *buildContext) hashFiltered(h io.Writer, m match) error {
	fi, err := os.Lstat(m.path)
	if err != nil {
		return err
	}
	if err := bc.hashEntry(h, m.path, fi); err != nil {
		return err
	}
	ignored := func(p string) bool { return bc.ignored(bc.rel(p)) }
	return m.filter.walkKept(m.path, ignored, func(p, _ string, fi fs.FileInfo) error {
		return bc.hashEntry(h, p, fi)
	})
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// copyFlagsInput is what COPY's and ADD's flags add to the step's key
// (nothing when none is used, so that older keys stand): the patterns,
// --parents, --unpack, and each download's content.
func (p *Plan) copyFlagsInput(ds *dockerfile.Step) ([]string, error) {
	var c []string
	if len(ds.Exclude) > 0 {
		c = append(c, "exclude="+strings.Join(ds.Exclude, "\x00"))
	}
	if ds.Parents {
		c = append(c, "parents=true")
	}
	if ds.Unpack != nil {
		c = append(c, fmt.Sprintf("unpack=%t", *ds.Unpack))
	}
	for _, r := range ds.Remote {
		in, err := p.remoteInput(ds, r)
		if err != nil {
			return nil, err
		}
		c = append(c, in)
	}
	return c, nil
}
