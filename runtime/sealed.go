package runtime

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// sealedSelf returns a descriptor of the devbox binary that the container
// can never write through, so that a container that opens /proc/1/exe
// cannot replace the host's binary (the runc CVE-2019-5736 class). It is a
// detached read-only bind mount of the binary (cheap), or, where the
// kernel has no open_tree, a sealed memfd copy.
func sealedSelf() (*os.File, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if f, err := readonlyClone(exe); err == nil {
		return f, nil
	}
	return memfdCopy(exe)
}

// execPath names exe for the child's execve as /proc/self/fd/N, with N a
// descriptor the child's file set-up cannot overwrite. The child first
// dups the n inherited files onto 0..n-1 (and may park up to n+1 more
// above them while shuffling), and only then execs: had N been one of
// those numbers, the path would name another file (the control socket:
// EACCES). That happened whenever the sealed binary's descriptor was
// low, e.g. under `ip netns exec`, which leaves fd 3 free.
// The caller closes the returned copy after the fork.
func execPath(exe *os.File, n int) (string, *os.File, error) {
	fd, err := unix.FcntlInt(exe.Fd(), unix.F_DUPFD_CLOEXEC, 2*n+2)
	if err != nil {
		return "", nil, fmt.Errorf("dup devbox binary: %w", err)
	}
	return "/proc/self/fd/" + strconv.Itoa(fd), os.NewFile(uintptr(fd), "devbox (exec)"), nil
}

func readonlyClone(exe string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, exe, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, err
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "devbox (read-only)"), nil
}

func memfdCopy(exe string) (*os.File, error) {
	fd, err := unix.MemfdCreate("devbox", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "devbox (memfd)")
	src, err := os.Open(exe)
	if err != nil {
		f.Close()
		return nil, err
	}
	defer src.Close()
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, err
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	return f, nil
}
