package runtime

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestClearSetID: set-id bits made since the start go, older ones and
// anything reached through a symlink (a host file) stay.
func TestClearSetID(t *testing.T) {
	tree, outside := t.TempDir(), t.TempDir()
	mk := func(p string) string {
		os.WriteFile(p, []byte("x"), 0o755)
		os.Chmod(p, 0o755|os.ModeSetuid|os.ModeSetgid)
		return p
	}
	old := mk(filepath.Join(tree, "old"))
	time.Sleep(20 * time.Millisecond)
	since := time.Now().UnixNano()
	time.Sleep(20 * time.Millisecond)
	os.MkdirAll(filepath.Join(tree, "sub"), 0o755)
	fresh := mk(filepath.Join(tree, "sub", "fresh"))
	host := mk(filepath.Join(outside, "host"))
	os.Symlink(host, filepath.Join(tree, "link"))
	os.Symlink(outside, filepath.Join(tree, "dirlink"))

	if n := clearSetID(&Project{Dir: tree}, since); n != 1 {
		t.Errorf("cleared %d files, want 1", n)
	}
	for p, want := range map[string]bool{old: true, fresh: false, host: true} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode()&os.ModeSetuid != 0; got != want {
			t.Errorf("%s: setuid %v, want %v", p, got, want)
		}
	}
}
