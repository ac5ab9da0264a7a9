package builder

import (
	"os"
	"syscall"
	"testing"

	"github.com/devbox/devbox/devenv/spec/dockerfile"
	"github.com/devbox/devbox/internal/state"
	"github.com/devbox/devbox/internal/testenv"
)

// TestCacheSharing: a cache is made once, with its mode and owner, in
// the state root, and kept; a private one in use by a locked RUN gives
// another RUN a fresh directory of its own; the lock goes with release.
func TestCacheSharing(t *testing.T) {
	testenv.NeedRoot(t) // chown
	root := state.Root(t.TempDir())
	mounter := func() *runMounter { return &runMounter{root: root, b: &Result{}, tmp: t.TempDir()} }
	m := dockerfile.Mount{Type: dockerfile.MountCache, Target: "/c", ID: "/c", Sharing: "locked", Mode: 0o700, UID: 1000, GID: 100}
	holder := mounter()
	held, err := holder.cache(0, m)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(held.Source, &st); err != nil || st.Uid != 1000 || st.Gid != 100 || st.Mode&0o7777 != 0o700 {
		t.Errorf("cache dir %s: %v %d:%d %o", held.Source, err, st.Uid, st.Gid, st.Mode&0o7777)
	}
	if !held.Canonical || held.Readonly {
		t.Errorf("mount %+v", held)
	}
	os.WriteFile(held.Source+"/kept", []byte("x"), 0o644)
	m.Sharing = "private"
	other := mounter()
	fresh, err := other.cache(0, m)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Source == held.Source {
		t.Error("a private cache in use was given again")
	}
	other.release()
	holder.release()
	again := mounter()
	defer again.release()
	reused, err := again.cache(0, m)
	if err != nil || reused.Source != held.Source {
		t.Fatalf("after release: %v %+v", err, reused)
	}
	if _, err := os.Stat(reused.Source + "/kept"); err != nil {
		t.Errorf("the cache was not kept: %v", err)
	}
}
