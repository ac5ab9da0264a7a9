package rootfs

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// A layer is unpacked alone (extract.go), then completed against the
// layers below it, and read as their overlay: the merged view of a stack
// of layers, top first, without mounting it.

// fixup completes a layer against the layers below it (lowers, top first):
// implied directories take the owner, mode and times of the directory
// below, and hard links to files below become copies.
func fixup(dir string, x *extractor, lowers []string) error {
	if len(x.implied) == 0 && len(x.links) == 0 {
		return nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	var lowerRoots []*os.Root
	for _, l := range lowers {
		r, err := os.OpenRoot(l)
		if err != nil {
			return err
		}
		defer r.Close()
		lowerRoots = append(lowerRoots, r)
	}
	for _, rel := range x.implied {
		_, fi := lookupLower(lowerRoots, rel)
		if fi == nil || !fi.IsDir() {
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if err := root.Lchown(rel, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if err := root.Chmod(rel, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
		if err := root.Chtimes(rel, fi.ModTime(), fi.ModTime()); err != nil {
			return err
		}
	}
	for _, l := range x.links {
		lr, fi := lookupLower(lowerRoots, l.target)
		if fi == nil || !fi.Mode().IsRegular() {
			return &ExtractError{Entry: l.name, Err: fmt.Errorf("hard link to %q, which is not a file in this or a lower layer", l.target)}
		}
		if err := copyUp(lr, root, l.target, l.name, fi); err != nil {
			return &ExtractError{Entry: l.name, Err: err}
		}
	}
	return nil
}

// lookupLower finds rel in the layers below, top first, as overlay
// merges them: a whiteout of rel or of a directory above it hides what is
// below, as does a file where a directory would be, and an opaque
// directory above it hides the layers under its own. It returns nil if
// rel does not exist in the merged view.
func lookupLower(lowers []*os.Root, rel string) (*os.Root, fs.FileInfo) {
	parts := strings.Split(filepath.Clean(rel), "/")
	for _, r := range lowers {
		opaque := false
		for i := 1; i < len(parts); i++ {
			dir := strings.Join(parts[:i], "/")
			fi, err := r.Lstat(dir)
			if err != nil {
				break // this layer has nothing at rel
			}
			if !fi.IsDir() {
				return nil, nil // a whiteout or a file hides what is below
			}
			if v, err := getXattr(filepath.Join(r.Name(), dir), opaqueXattr()); err == nil && string(v) == "y" {
				opaque = true
			}
		}
		if fi, err := r.Lstat(rel); err == nil {
			if fi.Mode()&fs.ModeCharDevice != 0 && fi.Sys().(*syscall.Stat_t).Rdev == 0 {
				return nil, nil // whited out
			}
			return r, fi
		}
		if opaque {
			return nil, nil
		}
	}
	return nil, nil
}

func copyUp(from, to *os.Root, src, dst string, fi fs.FileInfo) error {
	in, err := from.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := to.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	if err := out.Chown(int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := out.Chmod(fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)); err != nil {
		return err
	}
	return to.Chtimes(dst, fi.ModTime(), fi.ModTime())
}

// LayersHave reports whether rel exists in the merged view of a stack of
// layer directories (top first): whiteouts hide what is below them, and
// paths resolve inside each layer, never through a symlink out of it.
func LayersHave(layers []string, rel string) bool { return StatInLayers(layers, rel) != nil }

// ReadFromLayers reads the file rel as the overlay of layers (top first)
// would show it, with its attributes: fs.ErrNotExist if no layer has it or
// it is whited out. A symlink is refused rather than followed: its target
// may live in another layer, or nowhere.
func ReadFromLayers(layers []string, rel string) ([]byte, fs.FileInfo, error) {
	roots, closeAll := openRoots(layers)
	defer closeAll()
	r, fi := lookupLower(roots, rel)
	if fi == nil {
		return nil, nil, fs.ErrNotExist
	}
	if !fi.Mode().IsRegular() {
		return nil, fi, fmt.Errorf("%s is not a regular file (%s)", rel, fi.Mode().Type())
	}
	data, err := r.ReadFile(rel)
	return data, fi, err
}

// StatInLayers is the attributes of rel as the overlay of layers would
// show them; nil if absent.
func StatInLayers(layers []string, rel string) fs.FileInfo {
	roots, closeAll := openRoots(layers)
	defer closeAll()
	_, fi := lookupLower(roots, rel)
	return fi
}

// openRoots opens each layer directory that exists as an os.Root.
func openRoots(layers []string) ([]*os.Root, func()) {
	var roots []*os.Root
	for _, l := range layers {
		if r, err := os.OpenRoot(l); err == nil {
			roots = append(roots, r)
		}
	}
	return roots, func() {
		for _, r := range roots {
			r.Close()
		}
	}
}
