package userns

import (
	"os"
	"reflect"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestOwnerMap(t *testing.T) {
	m := IDMap{UID: 1 << 20, GID: 2 << 20, Size: Size}
	id := func(d, h, n int) syscall.SysProcIDMap {
		return syscall.SysProcIDMap{ContainerID: d, HostID: h, Size: n}
	}
	b := 1 << 20
	cases := []struct {
		name      string
		owner, as uint32
		want      []syscall.SysProcIDMap
	}{
		{"same", 1000, 1000, []syscall.SysProcIDMap{id(0, b, Size)}},
		{"root user, owner 1000", 1000, 0, []syscall.SysProcIDMap{
			id(1, b+1, 999), id(1001, b+1001, Size-1001), id(1000, b, 1), id(0, b+1000, 1)}},
		{"user 1000, owner root", 0, 1000, []syscall.SysProcIDMap{
			id(1, b+1, 999), id(1001, b+1001, Size-1001), id(0, b+1000, 1), id(1000, b, 1)}},
		{"owner out of range", 200000, 0, []syscall.SysProcIDMap{id(1, b+1, Size-1), id(200000, b, 1)}},
	}
	for _, c := range cases {
		uids, _ := m.OwnerMap(c.owner, 0, c.as, 0)
		if !reflect.DeepEqual(uids, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, uids, c.want)
		}
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
