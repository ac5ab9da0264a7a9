package treerules

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	maxFileLines = 500
	maxFuncLines = 80
)

// buildOutputNames are folder names that tools take for build output.
var buildOutputNames = map[string]bool{"build": true, "dist": true, "out": true, "target": true}

// stateNames are the state layout's own file names: internal/state alone
// spells them.
var stateNames = []string{`"state.json"`, `"upper-ids.json"`, `"client_key"`, `"known_hosts"`, `"ssh.sock"`, `"image.json"`, `"pushed.json"`, `"kube_host_key"`}

// source is one parsed non-test Go file of the tree.
type source struct {
	path string
	file *ast.File
	text string
}

// tree parses every non-test Go file under the repository's root.
func tree(t *testing.T) (*token.FileSet, []source) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []source
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			if buildOutputNames[d.Name()] {
				t.Errorf("folder %s is named like build output", rel)
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, p, data, parser.ParseComments)
		if err != nil {
			return err
		}
		files = append(files, source{rel, f, string(data)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fset, files
}

// generated reports whether f says it is generated (Go's convention).
func generated(f *ast.File) bool {
	for _, c := range f.Comments {
		if strings.HasPrefix(c.Text(), "Code generated") && strings.Contains(c.Text(), "DO NOT EDIT") {
			return true
		}
	}
	return false
}

func TestTreeRules(t *testing.T) {
	fset, files := tree(t)
	documented := map[string]bool{}
	for _, s := range files {
		dir := filepath.Dir(s.path)
		if _, ok := documented[dir]; !ok {
			documented[dir] = false
		}
		if s.file.Doc != nil {
			documented[dir] = true
		}
		if generated(s.file) {
			continue
		}
		if n := strings.Count(s.text, "\n"); n > maxFileLines {
			t.Errorf("%s: %d lines, over %d", s.path, n, maxFileLines)
		}
		for _, d := range s.file.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Body != nil {
				if n := fset.Position(fn.Body.End()).Line - fset.Position(fn.Body.Pos()).Line - 1; n > maxFuncLines {
					t.Errorf("%s: func %s: %d lines, over %d", s.path, fn.Name.Name, n, maxFuncLines)
				}
			}
		}
		if filepath.ToSlash(dir) != "internal/state" {
			for _, name := range stateNames {
				if strings.Contains(s.text, name) {
					t.Errorf("%s spells the state file %s: ask internal/state for its path", s.path, name)
				}
			}
		}
	}
	for dir, ok := range documented {
		if !ok {
			t.Errorf("package %s has no package comment (a doc.go)", dir)
		}
	}
}
