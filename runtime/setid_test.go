package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// project is a Project of dir as devenv makes one.
func project(t *testing.T, dir string) *Project {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return &Project{Dir: dir, Dev: uint64(st.Dev), Ino: st.Ino, HostUID: st.Uid, HostGID: st.Gid}
}

// setid makes a file with the set-id bits at p.
func setid(p string) string {
	os.WriteFile(p, []byte("x"), 0o755)
	os.Chmod(p, 0o755|os.ModeSetuid|os.ModeSetgid)
	return p
}

// TestClearSetID: set-id bits made since the start go, wherever in the
// tree (deeper than PATH_MAX too); older ones, and anything reached
// through a symlink (a host file), stay; a FIFO does not stop the walk.
func TestClearSetID(t *testing.T) {
	tree, outside := t.TempDir(), t.TempDir()
	old := setid(filepath.Join(tree, "old"))
	time.Sleep(20 * time.Millisecond)
	since := time.Now().UnixNano()
	time.Sleep(20 * time.Millisecond)
	os.MkdirAll(filepath.Join(tree, "sub"), 0o755)
	fresh := setid(filepath.Join(tree, "sub", "fresh"))
	host := setid(filepath.Join(outside, "host"))
	os.Symlink(host, filepath.Join(tree, "link"))
	os.Symlink(outside, filepath.Join(tree, "dirlink"))
	unix.Mkfifo(filepath.Join(tree, "fifo"), 0o644)
	deep := deepDir(t, tree, 5000)
	if err := unix.Mknodat(deep, "suid", unix.S_IFREG|0o755, 0); err != nil {
		t.Fatal(err)
	}
	unix.Fchmodat(deep, "suid", 0o4755, 0)
	if err := unix.Fsetxattr(mustOpen(t, filepath.Join(tree, "sub", "fresh")), capXattr, v2Cap(), 0); err != nil {
		t.Logf("cannot set a file capability here (%v): that part is not checked", err)
	}

	if n := clearSetID(project(t, tree), since); n != 2 {
		t.Errorf("cleared %d files, want 2", n)
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
	var st unix.Stat_t
	if err := unix.Fstatat(deep, "suid", &st, 0); err != nil || st.Mode&unix.S_ISUID != 0 {
		t.Errorf("a set-id file deeper than PATH_MAX kept its bit: %o %v", st.Mode, err)
	}
	if _, err := unix.Getxattr(fresh, capXattr, nil); err == nil {
		t.Errorf("%s kept its file capability", fresh)
	}
	// A tree whose path now names another directory is not swept.
	p := project(t, tree)
	p.Ino++
	setid(filepath.Join(tree, "later"))
	if n := clearSetID(p, since); n != 0 {
		t.Errorf("swept a directory that is not the project's: %d", n)
	}
}

// deepDir makes a chain of depth directories under dir, deeper than
// PATH_MAX, and returns the last one open.
func deepDir(t *testing.T, dir string, depth int) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("d", 200)
	for i := 0; i < depth/200+25; i++ {
		unix.Mkdirat(fd, name, 0o755)
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func mustOpen(t *testing.T, p string) int {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// v2Cap is a revision-2 security.capability value granting cap_setuid.
func v2Cap() []byte {
	b := make([]byte, 20)
	b[3] = 0x02                 // VFS_CAP_REVISION_2
	b[0] = 1                    // VFS_CAP_FLAGS_EFFECTIVE
	b[4] = 1 << unix.CAP_SETUID // permitted, low word
	return b
}
