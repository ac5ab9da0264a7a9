package subid

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox/devbox/internal/state"
	"github.com/devbox/devbox/runtime/userns"
)

func testAllocator(t *testing.T, subuid string) Allocator {
	dir := t.TempDir()
	a := New(state.Root(dir))
	a.Dir = filepath.Join(dir, "ids")
	a.SubUID, a.SubGID = filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
	// As on a host used before: what runs on this one (containers in
	// its own ranges) is not imported into the test's (TestImportRunning).
	os.MkdirAll(a.Dir, 0o700)
	os.WriteFile(filepath.Join(a.Dir, "imported"), nil, 0o600)
	if subuid != "" {
		os.WriteFile(a.SubUID, []byte(subuid), 0o644)
	}
	return a
}

// TestAddsRangeAboveOthers: with no entry of its own devbox adds one,
// aligned, above every other user's range, and uses it.
func TestAddsRangeAboveOthers(t *testing.T) {
	a := testAllocator(t, "alice:100000:65536\nbob:2000000:70000\n")
	m, err := a.Env("web")
	if err != nil {
		t.Fatal(err)
	}
	if m.UID < 2070000 || m.UID%userns.Size != 0 || m.Size != userns.Size {
		t.Errorf("range %v overlaps another user's or is not aligned", m)
	}
	data, _ := os.ReadFile(a.SubUID)
	if !strings.Contains(string(data), "\ndevbox:") {
		t.Errorf("/etc/subuid not extended: %q", data)
	}
	if again, _ := a.Env("web"); again != m {
		t.Errorf("second up: %v, want the same %v", again, m)
	}
}

// TestSlots: environments get distinct ranges and keep them; a released
// one and one whose process died are given out again.
func TestSlots(t *testing.T) {
	a := testAllocator(t, "devbox:3000000000:196608\n") // three slots, where no process of the host runs
	web, _ := a.Env("web")
	os.MkdirAll(a.Root.Env("web").Dir(), 0o700)
	db, _ := a.Env("db")
	os.MkdirAll(a.Root.Env("db").Dir(), 0o700)
	if web == db || web.UID != 3000000000 || db.UID != 3000000000+userns.Size {
		t.Fatalf("web %v db %v", web, db)
	}
	tr, release, err := a.Transient()
	if err != nil || tr == web || tr == db {
		t.Fatalf("transient %v %v", tr, err)
	}
	if _, err := a.Env("full"); err == nil {
		t.Error("a fourth range out of three")
	}
	release()
	if m, err := a.Env("cache"); err != nil || m != tr {
		t.Errorf("after release: %v %v, want %v", m, err, tr)
	}
	// An environment whose directory is gone (rm killed half-way) frees
	// its range.
	os.RemoveAll(a.Root.Env("db").Dir())
	if m, err := a.Env("next"); err != nil || m != db {
		t.Errorf("after db's removal: %v %v, want %v", m, err, db)
	}
	// A dead process's transient range is free.
	os.WriteFile(a.path(0), []byte("pid 999999999 1 x"), 0o600)
	a.ReleaseEnv("cache")
	if m, _, err := a.Transient(); err != nil || m != web {
		t.Errorf("a dead owner's range: %v %v, want %v", m, err, web)
	}
}

func TestBadSubuid(t *testing.T) {
	a := testAllocator(t, "devbox:x:65536\n")
	if _, err := a.Env("web"); err == nil || !strings.Contains(err.Error(), "subuid:1") {
		t.Errorf("bad line: %v", err)
	}
	a = testAllocator(t, "devbox:1000000:100\n")
	if _, err := a.Env("web"); err == nil {
		t.Error("a range too small for a container")
	}
}

func TestReleaseWithNothingAllocated(t *testing.T) {
	a := testAllocator(t, "")
	if err := a.ReleaseEnv("never"); err != nil {
		t.Fatalf("release where nothing was allocated: %v", err)
	}
}

// TestHostWide: two state roots share one registry, so their
// environments of the same name get distinct ranges; an environment whose
// state root was deleted keeps its range while a process runs in it.
func TestHostWide(t *testing.T) {
	// Slot 0 holds uid 0, which this test's own process runs as.
	if New("/a").Dir != New("/b").Dir {
		t.Fatal("two state roots keep two registries")
	}
	a := testAllocator(t, "devbox:0:196608\n")
	b := New(state.Root(t.TempDir()))
	b.Dir, b.SubUID, b.SubGID = a.Dir, a.SubUID, a.SubGID
	os.MkdirAll(a.Root.Env("web").Dir(), 0o700)
	os.MkdirAll(b.Root.Env("web").Dir(), 0o700)
	wa, err := a.Env("web")
	if err != nil {
		t.Fatal(err)
	}
	wb, err := b.Env("web")
	if err != nil {
		t.Fatal(err)
	}
	if wa == wb {
		t.Fatalf("two state roots' environments share %v", wa)
	}
	os.RemoveAll(a.Root.Dir())
	if m, err := b.Env("api"); err != nil || m == wa {
		t.Errorf("a deleted root's range with live processes given out again: %v %v", m, err)
	}
}

// TestImportRunning: the first use of the host-wide registry records the
// slots that containers of an older devbox run in, so that they are not
// handed out again.
func TestImportRunning(t *testing.T) {
	// Slot 0 holds uid 0, which this test's own process runs as.
	a := testAllocator(t, "devbox:0:196608\n")
	os.Remove(filepath.Join(a.Dir, "imported"))
	m, err := a.Env("web")
	if err != nil {
		t.Fatal(err)
	}
	if m.UID == 0 {
		t.Errorf("the slot that running processes use was handed out: %v", m)
	}
	if data, _ := os.ReadFile(a.path(0)); string(data) != legacyOwner {
		t.Errorf("slot 0 is recorded as %q", data)
	}
}
