package rootfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/runtime/userns"
)

// Whiteout names of the OCI layer format, and their overlayfs forms.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// opaqueXattr marks an opaque directory for overlayfs, in this process's
// namespace of overlay xattrs.
func opaqueXattr() string { return userns.OverlayXattrs() + "opaque" }

// ExtractError names the entry of a layer that could not be unpacked
// safely.
type ExtractError struct {
	Entry string
	Err   error
}

func (e *ExtractError) Error() string { return fmt.Sprintf("layer entry %q: %v", e.Entry, e.Err) }
func (e *ExtractError) Unwrap() error { return e.Err }

var errEscapes = errors.New("escapes the layer root")

// extractor unpacks one layer's tar stream into a directory in overlayfs
// form. Every path is resolved inside the directory: parents are walked
// one component at a time with O_NOFOLLOW, symlinks among them are resolved
// by os.Root (which refuses to leave the root), and the final component is
// always acted on relative to its parent's descriptor, never followed.
type extractor struct {
	root *os.Root
	dirs map[string]*os.File // open parent directories by relative path
	// sgid marks cached directories with the setgid bit, in which a new
	// file takes the directory's group rather than ours.
	sgid map[string]bool
	// implied are directories the layer needs but does not contain; their
	// owner and mode come from the layers below (see fixup).
	implied []string
	// links are hard links to files the layer does not contain, to be
	// copied up from the layers below.
	links    []pendingLink
	dirTimes []dirTime
	warn     func(string)
	pool     *writePool
}

type pendingLink struct{ name, target string }

type dirTime struct {
	name  string
	mtime time.Time
}

// extractTar unpacks r into dir, which must exist and be empty.
func extractTar(r io.Reader, dir string, warn func(string)) (*extractor, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	x := &extractor{root: root, dirs: map[string]*os.File{}, sgid: map[string]bool{}, warn: warn, pool: newWritePool(warn)}
	defer root.Close()
	defer x.closeDirs()
	defer x.pool.close()
	tr := tar.NewReader(r)
	own := ownersOf()
	defer own.report(warn)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return x, fmt.Errorf("read layer: %w", err)
		}
		own.fit(hdr)
		if err := x.pool.failed(); err != nil {
			return x, err
		}
		if err := x.entry(hdr, tr); err != nil {
			return x, &ExtractError{Entry: hdr.Name, Err: err}
		}
	}
	if err := x.pool.wait(); err != nil {
		return x, err
	}
	// Directory times last: adding entries to a directory changes its mtime.
	for i := len(x.dirTimes) - 1; i >= 0; i-- {
		d := x.dirTimes[i]
		if err := x.setTimes(d.name, d.mtime); err != nil {
			return x, &ExtractError{Entry: d.name, Err: err}
		}
	}
	return x, nil
}

// closeDirs forgets the cached directory descriptors, after the files
// being written through them are done.
func (x *extractor) closeDirs() {
	x.pool.wait()
	for _, f := range x.dirs {
		f.Close()
	}
	clear(x.dirs)
	clear(x.sgid)
}

// cleanName turns an entry name into a path relative to the root. Absolute
// names are taken as relative (as tar and Docker do); a name that climbs
// out of the root is an error.
func cleanName(name string) (string, error) {
	c := path.Clean(strings.TrimLeft(name, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", errEscapes
	}
	return c, nil
}

// dirFD returns an open descriptor of directory rel, creating missing
// components (and remembering them as implied).
func (x *extractor) dirFD(rel string) (int, error) {
	if f, ok := x.dirs[rel]; ok {
		return int(f.Fd()), nil
	}
	var f *os.File
	if rel == "." {
		var err error
		if f, err = x.root.Open("."); err != nil {
			return -1, err
		}
	} else {
		pfd, err := x.dirFD(path.Dir(rel))
		if err != nil {
			return -1, err
		}
		base := path.Base(rel)
		fd, err := unix.Openat(pfd, base, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(pfd, base, 0o755); err != nil {
				return -1, err
			}
			x.implied = append(x.implied, rel)
			fd, err = unix.Openat(pfd, base, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0)
		}
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			// A symlink (or not a directory): let os.Root resolve it,
			// which fails if it leads outside the root.
			if f, err = x.root.Open(rel); err != nil {
				return -1, err
			}
			if st, err := f.Stat(); err != nil || !st.IsDir() {
				f.Close()
				return -1, fmt.Errorf("%s is not a directory", rel)
			}
		} else if err != nil {
			return -1, err
		} else {
			f = os.NewFile(uintptr(fd), rel)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return -1, err
	}
	x.dirs[rel] = f
	x.sgid[rel] = st.Mode&unix.S_ISGID != 0
	return int(f.Fd()), nil
}

// parent returns the descriptor of rel's directory and rel's base name;
// the root is its own parent.
func (x *extractor) parent(rel string) (int, string, error) {
	if rel == "." {
		fd, err := x.dirFD(".")
		return fd, ".", err
	}
	fd, err := x.dirFD(path.Dir(rel))
	return fd, path.Base(rel), err
}

// clear removes whatever is at rel so that something else can be put
// there, and forgets cached descriptors that may have gone with it.
func (x *extractor) clear(rel string, keepDir bool) error {
	pfd, base, err := x.parent(rel)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); errors.Is(err, unix.ENOENT) {
		return nil
	} else if err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if keepDir {
			return nil
		}
		x.closeDirs()
		return x.root.RemoveAll(rel)
	case unix.S_IFLNK:
		// A cached descriptor may have been reached through this link.
		err := unix.Unlinkat(pfd, base, 0)
		x.closeDirs()
		return err
	}
	return unix.Unlinkat(pfd, base, 0)
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	// An entry for a path still being written waits for it; so do hard
	// links, which may name any earlier file.
	if x.pool.pending[rel] || hdr.Typeflag == tar.TypeLink {
		if err := x.pool.wait(); err != nil {
			return err
		}
	}
	base := path.Base(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return x.whiteout(rel, base)
	}
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("would replace the layer root")
		}
		x.dirTimes = append(x.dirTimes, dirTime{".", hdr.ModTime})
		return x.attrs(".", hdr)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(rel, hdr)
	case tar.TypeReg: // the reader turns the old TypeRegA into TypeReg
		return x.file(rel, hdr, r)
	case tar.TypeSymlink:
		return x.symlink(rel, hdr)
	case tar.TypeLink:
		return x.hardlink(rel, hdr)
	case tar.TypeFifo:
		return x.fifo(rel, hdr)
	case tar.TypeChar, tar.TypeBlock:
		x.warn(fmt.Sprintf("skipping device node %s", hdr.Name))
		return nil
	case tar.TypeXGlobalHeader:
		return nil
	default:
		x.warn(fmt.Sprintf("skipping %s of unsupported type %q", hdr.Name, hdr.Typeflag))
		return nil
	}
}

// dir makes (or keeps) the directory rel; its mtime is set at the end,
// once nothing more is written into it.
func (x *extractor) dir(rel string, hdr *tar.Header) error {
	if err := x.clear(rel, true); err != nil {
		return err
	}
	pfd, base, err := x.parent(rel)
	if err != nil {
		return err
	}
	if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	x.forgetImplied(rel)
	if err := x.attrs(rel, hdr); err != nil {
		return err
	}
	x.dirTimes = append(x.dirTimes, dirTime{rel, hdr.ModTime})
	return nil
}

// symlink makes rel a symbolic link; its target is stored as given and
// never followed here.
func (x *extractor) symlink(rel string, hdr *tar.Header) error {
	if err := x.clear(rel, false); err != nil {
		return err
	}
	pfd, base, err := x.parent(rel)
	if err != nil {
		return err
	}
	if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
		return err
	}
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	return x.setTimes(rel, hdr.ModTime)
}

func (x *extractor) fifo(rel string, hdr *tar.Header) error {
	if err := x.clear(rel, false); err != nil {
		return err
	}
	pfd, base, err := x.parent(rel)
	if err != nil {
		return err
	}
	if err := unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0); err != nil {
		return err
	}
	return x.attrs(rel, hdr)
}

func (x *extractor) forgetImplied(rel string) {
	for i, d := range x.implied {
		if d == rel {
			x.implied = append(x.implied[:i], x.implied[i+1:]...)
			return
		}
	}
}

// whiteout turns .wh.NAME into the 0/0 character device overlayfs reads
// as "deleted", and .wh..wh..opq into the opaque-directory xattr.
func (x *extractor) whiteout(rel, base string) error {
	dir := path.Dir(rel)
	if base == whiteoutOpaque {
		fd, err := x.dirFD(dir)
		if err != nil {
			return err
		}
		return unix.Fsetxattr(fd, opaqueXattr(), []byte("y"), 0)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // aufs bookkeeping (.wh..wh.plnk …): not content
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("whiteout of %q", name)
	}
	target := path.Join(dir, name)
	if x.pool.pending[target] {
		if err := x.pool.wait(); err != nil {
			return err
		}
	}
	if err := x.clear(target, false); err != nil {
		return err
	}
	pfd, b, err := x.parent(target)
	if err != nil {
		return err
	}
	return unix.Mknodat(pfd, b, unix.S_IFCHR, 0)
}

func (x *extractor) file(rel string, hdr *tar.Header, r io.Reader) error {
	if err := x.clear(rel, false); err != nil {
		return err
	}
	pfd, base, err := x.parent(rel)
	if err != nil {
		return err
	}
	if hdr.Size <= smallFile {
		return x.pool.submit(writeJob{pfd: pfd, base: base, rel: rel, hdr: hdr, parentSgid: x.sgid[path.Dir(rel)]},
			func(b []byte) error { return readFull(r, b) })
	}
	fd, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	if err := setFileAttrs(fd, hdr, x.warn); err != nil {
		return err
	}
	return x.setTimes(rel, hdr.ModTime)
}

// attrs sets owner, mode and xattrs of an existing non-regular entry.
func (x *extractor) attrs(rel string, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeDir {
		fd, err := x.dirFD(rel)
		if err != nil {
			return err
		}
		x.sgid[rel] = hdr.Mode&02000 != 0
		return setFileAttrs(fd, hdr, x.warn)
	}
	pfd, base, err := x.parent(rel)
	if err != nil {
		return err
	}
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if err := unix.Fchmodat(pfd, base, tarMode(hdr), 0); err != nil {
		return err
	}
	return x.setTimes(rel, hdr.ModTime)
}

func (x *extractor) setTimes(rel string, mtime time.Time) error {
	pfd, base, err := x.parent(rel)
	if err != nil {
		return err
	}
	ts := unix.NsecToTimespec(mtime.UnixNano())
	return unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// hardlink links rel to a file earlier in this layer; a target the layer
// does not contain is copied up from the layers below in fixup.
func (x *extractor) hardlink(rel string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
	}
	if target == "." {
		return fmt.Errorf("hard link to the layer root")
	}
	if err := x.clear(rel, false); err != nil {
		return err
	}
	tfd, tbase, err := x.parent(target)
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); errors.Is(err, unix.ENOENT) {
		x.links = append(x.links, pendingLink{name: rel, target: target})
		return nil
	} else if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("hard link to directory %q", hdr.Linkname)
	}
	pfd, base, err := x.parent(rel)
	if err != nil {
		return err
	}
	return unix.Linkat(tfd, tbase, pfd, base, 0)
}
