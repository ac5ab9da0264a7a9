package rootfs

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// A Filter decides what an exported layer carries of one regular file:
// rel is its path in the tree ("etc/shadow"), data its content. It
// returns the content to write (data itself when nothing changes) or drop
// to leave the file out. It must depend on nothing but its arguments, so
// that the same tree always makes the same layer (and digest), and be
// safe to call from several goroutines: a registry write reads layers
// concurrently, and may read one twice.
type Filter func(rel string, data []byte) (out []byte, drop bool)

// FilterMax is the largest file a Filter sees; larger ones are copied as
// they are. Account files, npmrc files and keys are far smaller, and
// reading only small files keeps export to one read of each file.
const FilterMax = 1 << 20

// filtered runs the filter on the regular file p (rel in the tree), if
// there is one: data is what to write instead of p's bytes (hdr.Size set
// to match), nil to copy p as it is; drop leaves the file out.
func (lw *layerWriter) filtered(p, rel string, hdr *tar.Header) (data []byte, drop bool, err error) {
	if lw.filter == nil || hdr.Typeflag != tar.TypeReg || hdr.Size > FilterMax {
		return nil, false, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	data = lw.buf[:hdr.Size]
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, false, fmt.Errorf("%s: %w", p, err)
	}
	out, drop := lw.filter(rel, data)
	if drop {
		return nil, true, nil
	}
	hdr.Size = int64(len(out))
	return out, false, nil
}

// dropped leaves out rel, a file the filter dropped: a hard link to it
// that comes later becomes the first name (and is filtered in turn), and
// where a layer below has rel, a whiteout hides that one, so that the
// image has no file there rather than an older one.
func (lw *layerWriter) dropped(rel string, mtime time.Time, inode [2]uint64) error {
	if lw.links[inode] == rel {
		delete(lw.links, inode)
	}
	if !LayersHave(lw.below, rel) {
		return nil
	}
	return lw.marker(filepath.Join(filepath.Dir(rel), whiteoutPrefix+filepath.Base(rel)), mtime)
}
