package volume

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox/devbox/internal/state"
)

// TestPrepare: a new volume is filled once; an existing one is not
// filled again unless it is empty; a failed fill leaves no volume.
func TestPrepare(t *testing.T) {
	s := New(state.Root(t.TempDir()))
	fills := 0
	fill := func(dir string) error {
		fills++
		return os.WriteFile(filepath.Join(dir, "f"), []byte("image"), 0o644)
	}
	if _, err := s.Prepare("bad", func(string) error { return errors.New("boom") }); err == nil || !strings.Contains(err.Error(), "volume bad: boom") {
		t.Fatalf("failed fill: %v", err)
	}
	if names, _ := s.List(); len(names) != 0 {
		t.Errorf("a failed fill left %v", names)
	}
	dir, err := s.Prepare("v", fill)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "f"), []byte("mine"), 0o644)
	if _, err := s.Prepare("v", fill); err != nil || fills != 1 {
		t.Fatalf("second prepare: %v, %d fills", err, fills)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "f")); string(data) != "mine" {
		t.Errorf("kept %q", data)
	}
	os.Remove(filepath.Join(dir, "f"))
	if _, err := s.Prepare("v", fill); err != nil || fills != 2 {
		t.Errorf("an empty volume is filled again: %v, %d fills", err, fills)
	}
	if names, err := s.List(); err != nil || len(names) != 1 || names[0] != "v" {
		t.Errorf("list %v %v", names, err)
	}
	if err := s.Remove("v"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("v"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"a": true, "node_modules": true, "x.y-z_1": true, "": false, ".x": false, "a/b": false, "..": false, "-a": false} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("%q: %v", name, err)
		}
	}
}
