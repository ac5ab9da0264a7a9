package builder

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/devbox/devbox/devenv/spec/dockerfile"
)

// tree makes files (a trailing "/" makes a directory) under a new
// directory.
func mkTree(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f)
		if strings.HasSuffix(f, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// listTree is every path under dir, directories with a trailing "/".
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	return out
}

// copyInto runs a COPY of ds's sources from the context ctx into a new
// root, and lists what it made.
func copyInto(t *testing.T, ctx string, ds *dockerfile.Step) ([]string, error) {
	t.Helper()
	bc, err := openContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := copyStep(ds, nil, &copySource{root: ctx, context: bc}, root, nil); err != nil {
		return nil, err
	}
	return listTree(t, root), nil
}

// TestCopyExclude: --exclude as BuildKit's tests have it
// (frontend/dockerfile/exclude_patterns_test.go): patterns match inside
// each source, a wildcard's matches are not themselves matched, and a
// "!" exception reaches into an excluded directory.
func TestCopyExclude(t *testing.T) {
	ctx := mkTree(t, "dir1/a.png", "dir1/b.txt", "dir2/c.pdf", "dir2/sub/d.txt", "e.txt", "keep/x.log", "keep/y.log")
	for _, c := range []struct {
		sources, exclude []string
		dest             string
		want             string
	}{
		{[]string{"."}, []string{"*/*.png", "*/*.pdf"}, "/1/", "1/ 1/dir1/ 1/dir1/b.txt 1/dir2/ 1/dir2/sub/ 1/dir2/sub/d.txt 1/e.txt 1/keep/ 1/keep/x.log 1/keep/y.log"},
		{[]string{"dir*"}, []string{"*.txt"}, "/2/", "2/ 2/a.png 2/c.pdf 2/sub/ 2/sub/d.txt"},
		{[]string{"dir*"}, []string{"**/*.txt"}, "/3/", "3/ 3/a.png 3/c.pdf 3/sub/"},
		{[]string{"e.txt"}, []string{"*.txt"}, "/4/", "4/ 4/e.txt"},
		{[]string{"."}, []string{"*", "!keep/y.log"}, "/5/", "5/ 5/keep/ 5/keep/y.log"},
		{[]string{"dir*"}, []string{"*"}, "/6", "6/"},
	} {
		got, err := copyInto(t, ctx, &dockerfile.Step{Kind: dockerfile.Copy, Sources: c.sources, Exclude: c.exclude, Dest: c.dest})
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("COPY --exclude=%q %q %s: %v\n%s\nwant\n%s", c.exclude, c.sources, c.dest, err, strings.Join(got, " "), c.want)
		}
	}
}

// TestCopyParents: --parents as BuildKit's tests have it
// (frontend/dockerfile/dockerfile_parents_test.go): the path is kept
// under the destination, from the source's first "/./" if it has one;
// wildcards and ** on either side; a missing path without wildcards is an
// error, an empty wildcard is not.
func TestCopyParents(t *testing.T) {
	ctx := mkTree(t, "test/a/b/c/d/e/bay", "test/a/b/c/d/foo", "test/a/b2/c/d/e/bar", "test/a/b/c2/d/e/baz", "test/a/b/c2/d/e2/baz", "test/a/b/c2/d/f/")
	for _, c := range []struct {
		sources []string
		want    string
	}{
		{[]string{"test/a/b/./c/d"}, "o/ o/c/ o/c/d/ o/c/d/e/ o/c/d/e/bay o/c/d/foo"},
		{[]string{"/test/a/b/c/d/."}, "o/ o/test/ o/test/a/ o/test/a/b/ o/test/a/b/c/ o/test/a/b/c/d/ o/test/a/b/c/d/e/ o/test/a/b/c/d/e/bay o/test/a/b/c/d/foo"},
		{[]string{"test/a/./b/./c/d/e"}, "o/ o/b/ o/b/c/ o/b/c/d/ o/b/c/d/e/ o/b/c/d/e/bay"},
		{[]string{"test/a/./*/c/d/e"}, "o/ o/b/ o/b/c/ o/b/c/d/ o/b/c/d/e/ o/b/c/d/e/bay o/b2/ o/b2/c/ o/b2/c/d/ o/b2/c/d/e/ o/b2/c/d/e/bar"},
		{[]string{"test/a/b*/./c/**/e"}, "o/ o/c/ o/c/d/ o/c/d/e/ o/c/d/e/bar o/c/d/e/bay"},
		{[]string{"test/a/b/c*/./d/**/baz", "test/a/b*/./c/**/bar"}, "o/ o/c/ o/c/d/ o/c/d/e/ o/c/d/e/bar o/d/ o/d/e/ o/d/e/baz o/d/e2/ o/d/e2/baz"},
		{[]string{"test/a/b2*/x"}, "o/"},
	} {
		got, err := copyInto(t, ctx, &dockerfile.Step{Kind: dockerfile.Copy, Sources: c.sources, Parents: true, Dest: "/o/"})
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("COPY --parents %q: %v\n%s\nwant\n%s", c.sources, err, strings.Join(got, " "), c.want)
		}
	}
	if _, err := copyInto(t, ctx, &dockerfile.Step{Kind: dockerfile.Copy, Sources: []string{"test/nope"}, Parents: true, Dest: "/o/"}); err == nil {
		t.Error("a missing path was copied")
	}
	// The parents are made from their sources, as BuildKit's delayed
	// parent directories (fsutil copier.createParentDirs).
	os.Chmod(filepath.Join(ctx, "test/a"), 0o700)
	root := t.TempDir()
	bc, _ := openContext(ctx)
	ds := &dockerfile.Step{Kind: dockerfile.Copy, Sources: []string{"test/a/b/c/d/foo"}, Parents: true, Dest: "/o"}
	if err := copyStep(ds, nil, &copySource{root: ctx, context: bc}, root, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "o/test/a")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("parent: %v %v", fi, err)
	}
}

// TestCopyFlagsKey: what --exclude leaves out is not in the key; what it
// keeps is.
func TestCopyFlagsKey(t *testing.T) {
	ctx := mkTree(t, "d/a.txt", "d/b.tmp")
	bc, _ := openContext(ctx)
	ds := &dockerfile.Step{Kind: dockerfile.Copy, Sources: []string{"d"}, Exclude: []string{"*.tmp"}}
	key := func() string {
		d, err := bc.stepDigest(ds)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	k0 := key()
	os.WriteFile(filepath.Join(ctx, "d/b.tmp"), []byte("changed"), 0o644)
	if key() != k0 {
		t.Error("an excluded file changed the key")
	}
	os.WriteFile(filepath.Join(ctx, "d/a.txt"), []byte("changed"), 0o644)
	if key() == k0 {
		t.Error("a copied file did not change the key")
	}
	// With --parents, the parents copied are in the key; a directory
	// nothing is copied from is not.
	par := &dockerfile.Step{Kind: dockerfile.Copy, Sources: []string{"d/*.txt"}, Parents: true}
	k1, _ := bc.stepDigest(par)
	os.Mkdir(filepath.Join(ctx, "other"), 0o755)
	if k, _ := bc.stepDigest(par); k != k1 {
		t.Error("an unrelated directory changed the key")
	}
	os.Chmod(filepath.Join(ctx, "d"), 0o700)
	if k, _ := bc.stepDigest(par); k == k1 {
		t.Error("a copied parent's mode did not change the key")
	}
	p := &Plan{}
	in, _ := p.copyFlagsInput(&dockerfile.Step{Exclude: []string{"a"}, Parents: true})
	if !slices.Contains(in, "exclude=a") || !slices.Contains(in, "parents=true") {
		t.Errorf("flags: %q", in)
	}
	if in, _ := p.copyFlagsInput(&dockerfile.Step{}); len(in) != 0 {
		t.Errorf("no flags: %q", in)
	}
}
