package userns

import (
	"encoding/binary"
	"os"
	"reflect"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestOwnerMap(t *testing.T) {
	m := IDMap{UID: 1 << 20, GID: 2 << 20, Size: Size}
	uids, gids, err := m.OwnerMap(1000, 1001, 0, 5)
	want := func(disk, host int) []syscall.SysProcIDMap {
		return []syscall.SysProcIDMap{{ContainerID: disk, HostID: host, Size: 1}}
	}
	if err != nil || !reflect.DeepEqual(uids, want(1000, 1<<20)) || !reflect.DeepEqual(gids, want(1001, 2<<20+5)) {
		t.Errorf("got %v %v %v", uids, gids, err)
	}
	if _, _, err := m.OwnerMap(1000, 1000, Size, 0); err == nil {
		t.Error("a container user outside the range")
	}
}

// TestNew makes a namespace with a mapping and reads the mapping back.
func TestNew(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to map ids")
	}
	m := IDMap{UID: 5 << 20, GID: 6 << 20, Size: Size}
	start := time.Now()
	ns, err := New(m.UIDMappings(), m.GIDMappings())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	t.Logf("New: %v", time.Since(start))
	owner, err := unix.IoctlGetInt(int(ns.Fd()), unix.NS_GET_OWNER_UID)
	if err != nil || owner != 0 {
		t.Errorf("owner %d, %v", owner, err)
	}
}

// TestShift moves a tree into a range and back, with a file capability
// written as a user namespace writes it (revision 3, with its root's uid).
func TestShift(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := t.TempDir()
	f := dir + "/ping"
	if err := os.WriteFile(f, []byte("x"), 0o4755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	unix.Chmod(f, 0o4755) // after the chown, which clears it
	m := &IDMap{UID: 1 << 20, GID: 2 << 20, Size: Size}
	if err := Shift(dir, nil, m); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Lstat(f, &st)
	if st.Uid != m.UID+1000 || st.Gid != m.GID+1000 || st.Mode&unix.S_ISUID == 0 {
		t.Fatalf("shifted in: %d:%d mode %o", st.Uid, st.Gid, st.Mode)
	}
	// A v3 capability (cap_net_raw) valid for the range's root.
	caps := make([]byte, capV3Size)
	caps[0], caps[3] = 0, 3                                            // magic: revision 3, not effective
	caps[5] = 1 << 5                                                   // permitted: CAP_NET_RAW (13) is bit 13 of the first word
	caps[capV2Size], caps[capV2Size+1], caps[capV2Size+2] = 0, 0, 0x10 // root uid 1<<20
	if err := unix.Lsetxattr(f, capXattr, caps, 0); err != nil {
		t.Skipf("cannot write a v3 capability here: %v", err)
	}
	if err := Shift(dir, m, nil); err != nil {
		t.Fatal(err)
	}
	unix.Lstat(f, &st)
	if st.Uid != 1000 || st.Gid != 1000 || st.Mode&unix.S_ISUID == 0 {
		t.Fatalf("shifted back: %d:%d mode %o", st.Uid, st.Gid, st.Mode)
	}
	got, err := readCaps(f)
	if err != nil || len(got) != capV2Size || got[3] != 2 || got[5] != 1<<5 {
		t.Errorf("capability after the shift back: % x, %v (want revision 2, cap_net_raw)", got, err)
	}
}

// TestShiftResumes: a shift killed after its chowns (which drop set-id
// bits) is finished by the next one, bits included; ACL entries move.
func TestShiftResumes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	base := t.TempDir()
	dir := base + "/upper"
	os.Mkdir(dir, 0o755)
	f := dir + "/sudo"
	os.WriteFile(f, []byte("x"), 0o755)
	unix.Chmod(f, 0o4755)
	m := &IDMap{UID: 1 << 20, GID: 2 << 20, Size: Size}
	// What a shift does up to the chowns, then dies.
	files, special, err := collect(dir, nil, m)
	if err != nil || len(special) != 1 {
		t.Fatalf("collect: %v %v", special, err)
	}
	if err := writeJournal(journalPath(dir), special); err != nil {
		t.Fatal(err)
	}
	for _, o := range files {
		o.chown(nil, m)
	}
	var st unix.Stat_t
	unix.Lstat(f, &st)
	if st.Mode&unix.S_ISUID != 0 {
		t.Skip("chown kept the setuid bit here; nothing to resume")
	}
	// The next up shifts from the recorded range (the chowns are done).
	if err := Shift(dir, m, m); err != nil {
		t.Fatal(err)
	}
	unix.Lstat(f, &st)
	if st.Mode&unix.S_ISUID == 0 || st.Uid != m.UID {
		t.Errorf("after the resumed shift: uid %d mode %o", st.Uid, st.Mode)
	}
	if _, err := os.Stat(journalPath(dir)); !os.IsNotExist(err) {
		t.Errorf("journal left: %v", err)
	}

	// A named user in an ACL moves with the files.
	acl := []byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 2, 0, 6, 0, 0xe8, 3, 0, 0, 4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x10, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff}
	g := dir + "/shared"
	os.WriteFile(g, nil, 0o644)
	if err := unix.Lsetxattr(g, "system.posix_acl_access", acl, 0); err != nil {
		t.Skipf("no ACLs here: %v", err)
	}
	if err := Shift(dir, m, nil); err != nil {
		t.Fatal(err)
	}
	if err := Shift(dir, nil, m); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, _ := unix.Lgetxattr(g, "system.posix_acl_access", buf)
	if n < 16 || binary.LittleEndian.Uint32(buf[16:]) != m.UID+1000 {
		t.Errorf("ACL user entry after the shift: % x", buf[:n])
	}
}
