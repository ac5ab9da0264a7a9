package userns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Shift moves the owners of every file under dir from one id range to
// another: from nil means canonical ids (container id = host id), as does
// to nil. Owners outside from's range are left alone. File capabilities
// follow: set inside a user namespace, they are stored with the host uid
// of its root (VFS_CAP_REVISION_3); shifted to canonical ids they become
// plain ones again, valid wherever the layer is mounted.
func Shift(dir string, from, to *IDMap) error {
	if from == to || (from != nil && to != nil && *from == *to) {
		return nil
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		uid, uok := shiftID(st.Uid, from.uid(), to.uid(), from.size())
		gid, gok := shiftID(st.Gid, from.gid(), to.gid(), from.size())
		if !uok && !gok {
			return nil
		}
		// chown drops file capabilities and set-id bits: read them first
		// and put them back.
		var caps []byte
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			if caps, err = readCaps(p); err != nil {
				return err
			}
		}
		if err := unix.Lchown(p, int(uid), int(gid)); err != nil {
			return err
		}
		if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 && st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if err := unix.Chmod(p, st.Mode&0o7777); err != nil {
				return err
			}
		}
		if caps != nil {
			return unix.Lsetxattr(p, capXattr, shiftCaps(caps, from, to), 0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("shift owners of %s from %s to %s: %w", dir, from, to, err)
	}
	return nil
}

// The range's bases; a nil map is the identity, of all 32-bit ids.
func (m *IDMap) uid() uint32 {
	if m == nil {
		return 0
	}
	return m.UID
}

func (m *IDMap) gid() uint32 {
	if m == nil {
		return 0
	}
	return m.GID
}

func (m *IDMap) size() uint32 {
	if m == nil {
		return Size
	}
	return m.Size
}

// shiftID moves id from base from to base to, if it is in from's range.
func shiftID(id, from, to, size uint32) (uint32, bool) {
	if id < from || id-from >= size {
		return id, false
	}
	return id - from + to, true
}

const capXattr = "security.capability"

// vfs_cap_data: magic_etc, then (permitted, inheritable) pairs, then, in
// revision 3, the root uid.
const (
	capRevisionMask = 0xFF000000
	capRevision2    = 0x02000000
	capRevision3    = 0x03000000
	capV2Size       = 4 + 2*2*4
	capV3Size       = capV2Size + 4
)

// readCaps returns p's file capabilities, or nil.
func readCaps(p string) ([]byte, error) {
	buf := make([]byte, capV3Size)
	n, err := unix.Lgetxattr(p, capXattr, buf)
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return buf[:n], nil
}

// shiftCaps rewrites file capabilities for ids shifted from one range to
// another: revision 3 names the root uid they are valid for. Revision 2
// holds in any user namespace and is left as it is.
func shiftCaps(buf []byte, from, to *IDMap) []byte {
	if len(buf) != capV3Size || binary.LittleEndian.Uint32(buf)&capRevisionMask != capRevision3 {
		return buf
	}
	root, ok := shiftID(binary.LittleEndian.Uint32(buf[capV2Size:]), from.uid(), to.uid(), from.size())
	if !ok {
		return buf
	}
	if to == nil && root == 0 {
		magic := binary.LittleEndian.Uint32(buf) &^ capRevisionMask
		binary.LittleEndian.PutUint32(buf, magic|capRevision2)
		return buf[:capV2Size]
	}
	binary.LittleEndian.PutUint32(buf[capV2Size:], root)
	return buf
}
