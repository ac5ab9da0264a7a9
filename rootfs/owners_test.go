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
		{ranged, 70000, 42, [2]int{0, 0}, 1},
	} {
		h := &tar.Header{Uid: c.uid, Gid: c.gid}
		c.o.fit(h)
		if [2]int{h.Uid, h.Gid} != c.want || c.o.squashed != c.squashed {
			t.Errorf("%d:%d -> %d:%d (squashed %d), want %v (%d)", c.uid, c.gid, h.Uid, h.Gid, c.o.squashed, c.want, c.squashed)
		}
	}
}
