package builder

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/internal/state"
)

// TestPruneCaches: an idle cache is emptied, one a build holds is left
// alone, and the lock files stay.
func TestPruneCaches(t *testing.T) {
	root := t.TempDir()
	idle, busy := state.Root(root).BuildCache("idle"), state.Root(root).BuildCache("busy")
	for _, c := range []state.BuildCache{idle, busy} {
		os.MkdirAll(filepath.Join(c.Data(), "sub"), 0o755)
		os.WriteFile(filepath.Join(c.Data(), "sub", "f"), make([]byte, 1000), 0o644)
	}
	lock, err := os.OpenFile(busy.Lock(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	n, freed, err := PruneCaches(root)
	if err != nil || n != 1 || freed != 1000 {
		t.Fatalf("prune: %d caches, %d bytes, %v; want 1, 1000", n, freed, err)
	}
	if _, err := os.Stat(idle.Data()); !os.IsNotExist(err) {
		t.Errorf("idle cache kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(busy.Data(), "sub", "f")); err != nil {
		t.Errorf("busy cache touched: %v", err)
	}
	if _, err := os.Stat(idle.Lock()); err != nil {
		t.Errorf("lock file removed: %v", err)
	}
	if n, _, err := PruneCaches(t.TempDir()); n != 0 || err != nil {
		t.Errorf("a root without caches: %d, %v", n, err)
	}
}
