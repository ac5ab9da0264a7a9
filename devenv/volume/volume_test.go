package volume

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/state"
)

// TestPrepare: a new volume is filled once, and never again, even
// emptied; a failed fill leaves no volume.
func TestPrepare(t *testing.T) {
	s := New(state.Root(t.TempDir()))
	fills := 0
	fill := func(dir string) error {
		fills++
		return os.WriteFile(filepath.Join(dir, "f"), []byte("image"), 0o644)
	}
	if _, _, err := s.Prepare("bad", func(string) error { return errors.New("boom") }); err == nil || !strings.Contains(err.Error(), "volume bad: boom") {
		t.Fatalf("failed fill: %v", err)
	}
	if names, _ := s.List(); len(names) != 0 {
		t.Errorf("a failed fill left %v", names)
	}
	dir, release, err := s.Prepare("v", fill)
	if err != nil {
		t.Fatal(err)
	}
	release()
	os.WriteFile(filepath.Join(dir, "f"), []byte("mine"), 0o644)
	if _, release, err := s.Prepare("v", fill); err != nil || fills != 1 {
		t.Fatalf("second prepare: %v, %d fills", err, fills)
	} else {
		release()
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "f")); string(data) != "mine" {
		t.Errorf("kept %q", data)
	}
	os.Remove(filepath.Join(dir, "f"))
	if _, release, err := s.Prepare("v", fill); err != nil || fills != 1 {
		t.Errorf("an emptied volume was filled again: %v, %d fills", err, fills)
	} else {
		release()
	}
	if names, err := s.List(); err != nil || len(names) != 1 || names[0] != "v" {
		t.Errorf("list %v %v", names, err)
	}
	none := func() ([]string, error) { return nil, nil }
	if err := s.Remove("v", func() ([]string, error) { return nil, errors.New("no list") }); err == nil || !strings.Contains(err.Error(), "no list") {
		t.Errorf("remove when the users are unknown: %v", err)
	}
	if err := s.Remove("v", func() ([]string, error) { return []string{"env x"}, nil }); err == nil || !strings.Contains(err.Error(), "in use by env x") {
		t.Errorf("remove of a volume in use: %v", err)
	}
	if err := s.Remove("v", none); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("v", none); !errors.Is(err, ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
}

// TestRemoveWaitsForStarts: a removal waits for a start that holds the
// volume (Prepare's lock) and asks who uses it only then.
func TestRemoveWaitsForStarts(t *testing.T) {
	s := New(state.Root(t.TempDir()))
	_, release, err := s.Prepare("v", nil)
	if err != nil {
		t.Fatal(err)
	}
	var recorded atomic.Bool // flock orders it; the race detector does not know
	done := make(chan error, 1)
	go func() {
		done <- s.Remove("v", func() ([]string, error) {
			if recorded.Load() {
				return []string{"env x"}, nil
			}
			return nil, nil
		})
	}()
	select {
	case err := <-done:
		t.Fatalf("removal did not wait for the start: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	recorded.Store(true) // the start's record names the volume, then it lets go
	release()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("removal after the start recorded: %v", err)
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"a": true, "node_modules": true, "x.y-z_1": true, "": false, ".x": false, "a/b": false, "..": false, "-a": false} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("%q: %v", name, err)
		}
	}
}
