package rootfs

import (
	"archive/tar"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/runtime/userns"
)

// setFileAttrs sets owner, then mode (chown clears setuid bits), then
// xattrs on an open file or directory.
func setFileAttrs(fd int, hdr *tar.Header, warn func(string)) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, tarMode(hdr)); err != nil {
		return err
	}
	return setXattrs(fd, hdr, warn)
}

func setXattrs(fd int, hdr *tar.Header, warn func(string)) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		// overlayfs trusts its own xattrs (redirect, metacopy, origin):
		// a layer must never be able to set them.
		if userns.IsOverlayXattr(name) {
			warn(fmt.Sprintf("dropping xattr %s of %s", name, hdr.Name))
			continue
		}
		if err := unix.Fsetxattr(fd, name, []byte(v), 0); err != nil {
			warn(fmt.Sprintf("cannot set xattr %s on %s: %v", name, hdr.Name, err))
		}
	}
	return nil
}

// tarMode is the permission and special bits of a header in chmod form.
func tarMode(hdr *tar.Header) uint32 {
	m := uint32(hdr.Mode) & 0o777
	if hdr.Mode&04000 != 0 {
		m |= unix.S_ISUID
	}
	if hdr.Mode&02000 != 0 {
		m |= unix.S_ISGID
	}
	if hdr.Mode&01000 != 0 {
		m |= unix.S_ISVTX
	}
	return m
}
