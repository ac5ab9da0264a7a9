package builder

import (
	"os"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// CopyUp fills dst, a new volume's directory, with what the image of
// layers lower has at dir, as Docker fills a new volume: the directory's
// contents with their owners and modes, and dst takes the directory's
// own owner and mode. An image with no directory at dir gives nothing.
// tmp holds the merged view's scratch directories.
func CopyUp(lower []string, tmp, dir, dst string) error {
	if !existsInLayers(lower, strings.TrimPrefix(dir, "/")) {
		return nil
	}
	return onMerged(lower, tmp, "copyup-", func(root string) error {
		p, err := securejoin.SecureJoin(root, dir)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return nil // whited out, or not a directory: nothing to copy
		}
		cp := &copier{src: &copySource{root: root}, root: dst}
		return cp.dirInto(p, st)
	})
}

// dirInto copies directory p's contents into c.root, which takes p's
// mode and owner (c.owner, if set).
func (c *copier) dirInto(p string, st unix.Stat_t) error {
	if err := c.tree(p, "/"); err != nil {
		return err
	}
	uid, gid := int(st.Uid), int(st.Gid)
	if c.owner != nil {
		uid, gid = c.owner[0], c.owner[1]
	}
	if err := os.Chown(c.root, uid, gid); err != nil {
		return err
	}
	// unix's, not os's: os.FileMode drops the raw set-id bits.
	return unix.Chmod(c.root, st.Mode&0o7777)
}
