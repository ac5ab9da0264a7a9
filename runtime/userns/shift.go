package userns

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Shift moves the owners of every file under dir from one id range to
// another: from nil means canonical ids (container id = host id), as does
// to nil. Owners outside from's range are left alone. POSIX ACLs follow,
// and file capabilities too: set inside a user namespace, they are stored
// with the host uid of its root (VFS_CAP_REVISION_3); shifted to canonical
// ids they become plain ones again, valid wherever the layer is mounted.
//
// chown drops set-id bits and capabilities, which are put back after it.
// Files that have them are first written to a journal beside dir, so that
// a shift cut short between the chown and the putting back is finished,
// bits included, by the next Shift of dir.
func Shift(dir string, from, to *IDMap) error {
	if err := shift(dir, from, to); err != nil {
		return fmt.Errorf("shift owners of %s from %s to %s: %w", dir, describe(from), describe(to), err)
	}
	return nil
}

func shift(dir string, from, to *IDMap) error {
	j := journalPath(dir)
	pending, err := readJournal(j)
	if err != nil {
		return err
	}
	if from != to && (from == nil || to == nil || *from != *to) {
		files, special, err := collect(dir, from, to)
		if err != nil {
			return err
		}
		pending = append(pending, special...)
		if len(special) > 0 {
			if err := writeJournal(j, pending); err != nil {
				return err
			}
		}
		for _, f := range files {
			if err := f.chown(from, to); err != nil {
				return err
			}
		}
	}
	for _, e := range pending {
		if err := e.restore(dir); err != nil {
			return err
		}
	}
	if err := os.Remove(j); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// owned is a file whose owner is in the range being shifted from.
type owned struct {
	path     string
	uid, gid uint32
}

// collect lists the files under dir owned by from's ids, and of them the
// ones with set-id bits or capabilities, as they must be after the shift.
func collect(dir string, from, to *IDMap) ([]owned, []journalEntry, error) {
	var files []owned
	var special []journalEntry
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
		files = append(files, owned{p, uid, gid})
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil
		}
		caps, err := readCaps(p)
		if err != nil {
			return err
		}
		if caps != nil || st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
			rel, _ := filepath.Rel(dir, p)
			special = append(special, journalEntry{Path: rel, Mode: st.Mode & 0o7777, Caps: shiftCaps(caps, from, to)})
		}
		return nil
	})
	return files, special, err
}

// chown gives the file its shifted owner, and shifts its ACLs.
func (f owned) chown(from, to *IDMap) error {
	if err := unix.Lchown(f.path, int(f.uid), int(f.gid)); err != nil {
		return err
	}
	return shiftACLs(f.path, from, to)
}

// journalEntry is a file's mode and capabilities after a shift.
type journalEntry struct {
	Path string `json:"path"` // relative to the shifted directory
	Mode uint32 `json:"mode"`
	Caps []byte `json:"caps,omitempty"`
}

func (e journalEntry) restore(dir string) error {
	p := filepath.Join(dir, e.Path)
	if err := unix.Chmod(p, e.Mode); err != nil {
		return err
	}
	if e.Caps != nil {
		return unix.Lsetxattr(p, capXattr, e.Caps, 0)
	}
	return nil
}

func journalPath(dir string) string {
	return filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".shift.json")
}

func readJournal(path string) ([]journalEntry, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var entries []journalEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return entries, nil
}

// writeJournal writes the journal durably: it must be on disk before the
// first chown that drops what it records.
func writeJournal(path string, entries []journalEntry) error {
	data, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// describe names a mapping for messages; nil is canonical ids.
func describe(m *IDMap) string {
	if m == nil {
		return "canonical ids"
	}
	return m.String()
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

// POSIX ACL xattrs: a header, then entries of tag, permissions and id.
const (
	aclHeaderSize = 4
	aclEntrySize  = 8
	aclUser       = 0x02
	aclGroup      = 0x08
)

// shiftACLs moves the named users and groups of p's access and default
// ACLs from one range to the other.
func shiftACLs(p string, from, to *IDMap) error {
	for _, name := range []string{"system.posix_acl_access", "system.posix_acl_default"} {
		buf := make([]byte, 1024)
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ERANGE) {
			continue // none, or more than 127 entries: left as they are
		}
		if err != nil {
			return err
		}
		acl, changed := buf[:n], false
		for off := aclHeaderSize; off+aclEntrySize <= len(acl); off += aclEntrySize {
			tag := binary.LittleEndian.Uint16(acl[off:])
			id := binary.LittleEndian.Uint32(acl[off+4:])
			var moved uint32
			var ok bool
			switch tag {
			case aclUser:
				moved, ok = shiftID(id, from.uid(), to.uid(), from.size())
			case aclGroup:
				moved, ok = shiftID(id, from.gid(), to.gid(), from.size())
			}
			if ok {
				binary.LittleEndian.PutUint32(acl[off+4:], moved)
				changed = true
			}
		}
		if changed {
			if err := unix.Lsetxattr(p, name, acl, 0); err != nil {
				return err
			}
		}
	}
	return nil
}
