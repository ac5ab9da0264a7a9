package rootfs

import (
	"archive/tar"
	"testing"
)

func TestOwnersFit(t *testing.T) {
	var none *owners // the host's root: every id
	h := &tar.Header{Uid: 33, Gid: 42}
	none.fit(h)
	if h.Uid != 33 || h.Gid != 42 {
		t.Errorf("as the host's root: %d:%d", h.Uid, h.Gid)
	}
	one := &owners{uids: []idSpan{{0, 1}}, gids: []idSpan{{0, 1}}}
	ranged := &owners{uids: []idSpan{{0, 1}, {1, 65535}}, gids: []idSpan{{0, 1}, {1, 65535}}}
	for _, c := range []struct {
		o        *owners
		uid, gid int
		want     [2]int
		squashed int
	}{
		{one, 0, 0, [2]int{0, 0}, 0},
		{one, 33, 0, [2]int{0, 0}, 1},
		{one, 0, 42, [2]int{0, 0}, 2},
		{ranged, 33, 42, [2]int{33, 42}, 0},
		{ranged, 70000, 42, [2]int{0, 42}, 1},
	} {
		h := &tar.Header{Uid: c.uid, Gid: c.gid}
		c.o.fit(h)
		if [2]int{h.Uid, h.Gid} != c.want || c.o.squashed != c.squashed {
			t.Errorf("%d:%d -> %d:%d (squashed %d), want %v (%d)", c.uid, c.gid, h.Uid, h.Gid, c.o.squashed, c.want, c.squashed)
		}
	}
	// A lost owner's setuid, setgid and file capabilities go with it.
	one = &owners{uids: []idSpan{{0, 1}}, gids: []idSpan{{0, 1}}}
	for _, c := range []struct {
		uid, gid   int
		typ        byte
		mode, want int64
		caps       bool
	}{
		{0, 42, tar.TypeReg, 0o2755, 0o755, true},  // chage: setgid shadow
		{5, 0, tar.TypeReg, 0o4755, 0o755, false},  // setuid to another user
		{0, 0, tar.TypeReg, 0o4755, 0o4755, true},  // root's own: kept
		{0, 50, tar.TypeDir, 0o2775, 0o2775, true}, // a directory's setgid: kept
	} {
		h := &tar.Header{Uid: c.uid, Gid: c.gid, Typeflag: c.typ, Mode: c.mode,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "x"}}
		one.fit(h)
		_, caps := h.PAXRecords["SCHILY.xattr.security.capability"]
		if h.Mode != c.want || caps != c.caps {
			t.Errorf("%d:%d %o -> %o caps %v, want %o caps %v", c.uid, c.gid, c.mode, h.Mode, caps, c.want, c.caps)
		}
	}
}
