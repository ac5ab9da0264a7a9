package rootfs

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/runtime/userns"
)

// CompareLayers compares two layer directories entry by entry, as their
// tars would say them, and returns one line for each path that differs,
// sorted: the path, then how (content, mode, mtime, owner, type, link,
// xattrs), or that it is in one only. Overlay's own attributes, which no
// layer tar carries, are not compared.
func CompareLayers(a, b string) ([]string, error) {
	ea, err := treeEntries(a)
	if err != nil {
		return nil, err
	}
	eb, err := treeEntries(b)
	if err != nil {
		return nil, err
	}
	var diffs []string
	for _, p := range unionKeys(ea, eb) {
		x, inA := ea[p]
		y, inB := eb[p]
		var what []string
		switch {
		case !inA:
			what = []string{"only in the second"}
		case !inB:
			what = []string{"only in the first"}
		default:
			what = x.differences(y)
		}
		if len(what) > 0 {
			diffs = append(diffs, "/"+p+": "+strings.Join(what, ", "))
		}
	}
	return diffs, nil
}

// treeEntry is what a layer says of one path.
type treeEntry struct {
	typ      fs.FileMode
	mode     uint32
	uid, gid uint32
	mtime    unix.Timespec
	rdev     uint64
	link     string
	content  [sha256.Size]byte
	xattrs   string
	// hardlink is the path this one is a hard link to, as the layer's
	// tar says it (the first name of its inode); opaque marks an opaque
	// directory.
	hardlink string
	opaque   bool
}

// differences names what differs between e and f.
func (e treeEntry) differences(f treeEntry) []string {
	var out []string
	if e.typ != f.typ {
		return []string{fmt.Sprintf("type %v vs %v", e.typ, f.typ)}
	}
	if e.content != f.content || e.rdev != f.rdev {
		out = append(out, "content")
	}
	if e.link != f.link {
		out = append(out, fmt.Sprintf("link %q vs %q", e.link, f.link))
	}
	if e.mode != f.mode {
		out = append(out, fmt.Sprintf("mode %04o vs %04o", e.mode, f.mode))
	}
	if e.uid != f.uid || e.gid != f.gid {
		out = append(out, fmt.Sprintf("owner %d:%d vs %d:%d", e.uid, e.gid, f.uid, f.gid))
	}
	if e.mtime != f.mtime {
		out = append(out, fmt.Sprintf("mtime %s vs %s", stamp(e.mtime), stamp(f.mtime)))
	}
	if e.xattrs != f.xattrs {
		out = append(out, "xattrs")
	}
	if e.hardlink != f.hardlink {
		out = append(out, fmt.Sprintf("hard link to %q vs %q", e.hardlink, f.hardlink))
	}
	if e.opaque != f.opaque {
		out = append(out, fmt.Sprintf("opaque %v vs %v", e.opaque, f.opaque))
	}
	return out
}

func stamp(ts unix.Timespec) string {
	return time.Unix(ts.Sec, ts.Nsec).UTC().Format("2006-01-02T15:04:05.999999999Z")
}

// treeEntries reads every path of the layer directory dir.
func treeEntries(dir string) (map[string]treeEntry, error) {
	out := map[string]treeEntry{}
	inodes := map[[2]uint64]string{} // first name of each inode, in walk order as the tar
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := treeEntry{typ: d.Type(), mode: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid, mtime: st.Mtim, rdev: st.Rdev}
		if names, err := listXattrs(p); err == nil {
			slices.Sort(names)
			for _, n := range names {
				if userns.IsOverlayXattr(n) {
					v, _ := getXattr(p, n)
					e.opaque = e.opaque || n == opaqueXattr() && string(v) == "y"
					continue
				}
				v, _ := getXattr(p, n)
				e.xattrs += n + "=" + string(v) + "\x00"
			}
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			e.link, err = os.Readlink(p)
		case d.Type().IsRegular():
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := inodes[key]; ok && st.Nlink > 1 {
				e.hardlink = first
			} else {
				inodes[key] = rel
			}
			e.content, err = fileDigest(p)
		}
		out[rel] = e
		return err
	})
	return out, err
}

func fileDigest(p string) (sum [sha256.Size]byte, err error) {
	f, err := os.Open(p)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// unionKeys are the keys of a and b, sorted.
func unionKeys(a, b map[string]treeEntry) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
