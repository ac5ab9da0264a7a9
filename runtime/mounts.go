package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// maskedPaths are hidden from the container (runc's defaults): files get
// /dev/null bound over them, directories an empty read-only tmpfs.
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
}

// readonlyPaths are visible but read-only (runc's defaults).
var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// standardNodes are the nodes of the container's /dev.
var standardNodes = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// setupRootfs builds the container's root file system and pivots into it.
// It runs in the init, in the container's fresh mount namespace; the
// overlay (attached) and the binds (detached) come made by the parent
// (see hostMounts), in the order hostMounts.files gives.
func setupRootfs(c *Config, mounts []*os.File) error {
	want := 1 + len(c.Mounts) + len(c.Files)
	if c.nodesByBind() {
		want += len(c.Devices)
	}
	if len(mounts) != want {
		return fmt.Errorf("got %d mounts from the parent, want %d", len(mounts), want)
	}
	// Nothing mounted from here on may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / rslave: %w", err)
	}
	root, binds := fdPath(mounts[0]), mounts[1:]
	devices := binds[len(c.Mounts)+len(c.Files):]
	null, err := hostNull()
	if err != nil {
		return err
	}
	defer null.Close()
	steps := []func() error{
		func() error { return mountProc(root) },
		func() error { return mountSys(root, c.Network) },
		func() error { return mountDev(root, c.Devices, devices, c.nodesByBind()) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	for i, m := range c.binds() {
		if err := attachBind(root, m, binds[i]); err != nil {
			return err
		}
	}
	for _, p := range maskedPaths {
		if err := mask(root, p, null); err != nil {
			return err
		}
	}
	for _, p := range readonlyPaths {
		if err := readonly(root, p); err != nil {
			return err
		}
	}
	return pivotRoot(root)
}

// inRoot resolves p inside root, following symlinks as if root were /.
func inRoot(root, p string) (string, error) {
	return securejoin.SecureJoin(root, p)
}

// kernelDir is the image's /proc, /sys or /dev (name), made if missing. It
// must be a plain directory: were it a symlink, the kernel file system
// would be mounted where the link points and every mask and read-only path
// under it would miss (runc's CVE-2019-19921, CVE-2023-27561).
func kernelDir(root, name string, mode os.FileMode) (string, error) {
	dst := filepath.Join(root, name) // right under the root: nothing to resolve
	fi, err := os.Lstat(dst)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.Mkdir(dst, mode); err != nil {
			return "", fmt.Errorf("make /%s: %w", name, err)
		}
		return dst, nil
	case err != nil:
		return "", err
	case fi.Mode()&os.ModeSymlink != 0:
		target, _ := os.Readlink(dst)
		return "", fmt.Errorf("the image's /%s is a symbolic link (to %s): refused, a kernel file system must be mounted on a directory of its own", name, target)
	case !fi.IsDir():
		return "", fmt.Errorf("the image's /%s is not a directory (%s): refused", name, fi.Mode().Type())
	}
	return dst, nil
}

func mountProc(root string) error {
	dst, err := kernelDir(root, "proc", 0o555)
	if err != nil {
		return err
	}
	if err := unix.Mount("proc", dst, "proc", unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	return nil
}

func mountSys(root string, mode NetworkMode) error {
	dst, err := kernelDir(root, "sys", 0o555)
	if err != nil {
		return err
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV | unix.MS_RDONLY)
	if err := unix.Mount("sysfs", dst, "sysfs", flags, ""); err != nil {
		if mode != NetworkHost && mode != NetworkShared {
			return fmt.Errorf("mount /sys: %w", err)
		}
		// In a network namespace not of its user namespace (the host's,
		// another container's), a new sysfs may be refused: show the
		// host's, read-only.
		if err := unix.Mount("/sys", dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind /sys: %w", err)
		}
		return setReadonly(dst)
	}
	return nil
}

// mountDev makes the container's /dev: a tmpfs with the standard nodes
// and the extra host devices. In a user namespace nodes cannot be made,
// and would open nothing on a tmpfs mounted there: the host's standard
// nodes (all 0666) are bound instead, as rootless runc and podman do, each
// checked to be the device it is named for, and the extra ones come from
// the parent as detached binds (deviceNodes), in the order of extra.
func mountDev(root string, extra []string, extraBinds []*os.File, userns bool) error {
	dev, err := kernelDir(root, "dev", 0o755)
	if err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	for _, d := range standardNodes {
		p := filepath.Join(dev, d.name)
		rdev := unix.Mkdev(d.major, d.minor)
		if userns {
			err = bindNode("/dev/"+d.name, p, rdev)
		} else {
			err = makeNode(p, unix.S_IFCHR|0o666, rdev)
		}
		if err != nil {
			return err
		}
	}
	for i, p := range extra {
		if userns {
			err = attachBind(root, Mount{Source: p, Target: p}, extraBinds[i])
		} else {
			err = copyNode(p, dev)
		}
		if err != nil {
			return err
		}
	}
	subs := []struct {
		name, fstype, data string
		mode               os.FileMode
		flags              uintptr
	}{
		{"pts", "devpts", "newinstance,ptmxmode=0666,mode=0620,gid=5", 0o755, unix.MS_NOSUID | unix.MS_NOEXEC},
		{"shm", "tmpfs", "mode=1777,size=65536k", 0o1777, unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV},
		{"mqueue", "mqueue", "", 0o755, unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV},
	}
	for _, s := range subs {
		p := filepath.Join(dev, s.name)
		if err := os.Mkdir(p, s.mode); err != nil {
			return err
		}
		err := unix.Mount(s.fstype, p, s.fstype, s.flags, s.data)
		if err == unix.EINVAL && s.name == "pts" {
			// A user namespace without gid 5 (tty): rootless with one id.
			err = unix.Mount(s.fstype, p, s.fstype, s.flags, strings.TrimSuffix(s.data, ",gid=5"))
		}
		if err != nil {
			return fmt.Errorf("mount /dev/%s: %w", s.name, err)
		}
	}
	links := [][2]string{
		{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"},
	}
	for _, l := range links {
		if err := os.Symlink(l[0], filepath.Join(dev, l[1])); err != nil {
			return err
		}
	}
	return nil
}

// copyNode makes the host's device node hostPath (the host's tree is
// still visible here, before pivot_root) at the same path in the
// container's /dev, with its type, number and mode.
func copyNode(hostPath, dev string) error {
	var st unix.Stat_t
	if err := unix.Stat(hostPath, &st); err != nil {
		return fmt.Errorf("device %s: %w", hostPath, err)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFCHR && t != unix.S_IFBLK {
		return fmt.Errorf("device %s is not a device node", hostPath)
	}
	rel, ok := strings.CutPrefix(filepath.Clean(hostPath), "/dev/")
	if !ok {
		return fmt.Errorf("device %s is not under /dev", hostPath)
	}
	p := filepath.Join(dev, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return makeNode(p, st.Mode, st.Rdev)
}

// makeNode makes a device node with exactly mode (mknod is subject to
// umask).
func makeNode(p string, mode uint32, rdev uint64) error {
	if err := unix.Mknod(p, mode, int(rdev)); err != nil {
		return fmt.Errorf("mknod %s: %w", p, err)
	}
	return unix.Chmod(p, mode&0o7777)
}

// bindNode binds the host's device node hostPath over a new empty file p;
// it must be the device want (a node the host has replaced is not bound).
func bindNode(hostPath, p string, want uint64) error {
	src, err := os.OpenFile(hostPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("device %s: %w", hostPath, err)
	}
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return err
	}
	if t := st.Mode & unix.S_IFMT; (t != unix.S_IFCHR && t != unix.S_IFBLK) || st.Rdev != want {
		return fmt.Errorf("device %s is not the device node it should be", hostPath)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDONLY|unix.O_CLOEXEC, 0o666)
	if err != nil {
		return err
	}
	f.Close()
	if err := unix.Mount(fdPath(src), p, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind device %s: %w", hostPath, err)
	}
	return nil
}

// attachBind attaches the detached bind mount src at m.Target inside
// root, creating the target (a directory or an empty file, like the
// source) if it does not exist.
func attachBind(root string, m Mount, src *os.File) error {
	dst, err := inRoot(root, m.Target)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return fmt.Errorf("mount %s: %w", m.Source, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return fmt.Errorf("mount %s: %w", m.Target, err)
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("mount %s: %w", m.Target, err)
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return fmt.Errorf("mount %s: %w", m.Target, err)
		}
		f.Close()
	}
	// Resolved again inside the root, now that it exists: the mount goes
	// exactly there.
	target, err := openInRoot(root, m.Target)
	if err != nil || target == nil {
		return fmt.Errorf("mount %s: target gone: %v", m.Target, err)
	}
	defer target.Close()
	if err := unix.MoveMount(int(src.Fd()), "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Source, m.Target, err)
	}
	return nil
}

// setReadonly makes the mount at p, and every mount under it, read-only.
func setReadonly(p string) error { return setAttrs(p, unix.MOUNT_ATTR_RDONLY) }

// setAttrs sets mount attributes on the mount at p and every mount under it.
func setAttrs(p string, attrs uint64) error {
	attr := &unix.MountAttr{Attr_set: attrs}
	if err := unix.MountSetattr(unix.AT_FDCWD, p, unix.AT_RECURSIVE, attr); errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("mount attributes of %s: mount_setattr needs kernel 5.12 (devbox needs 5.15): %w", p, err)
	} else if err != nil {
		return fmt.Errorf("mount attributes of %s: %w", p, err)
	}
	return nil
}

// hostNull is the host's /dev/null, opened before anything of the
// container can be in the way, and checked to be the null device: masks
// bind it, and a mask bound from a file the container controls would be
// no mask (runc's CVE-2025-31133).
func hostNull() (*os.File, error) {
	f, err := os.OpenFile("/dev/null", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the host's /dev/null: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		f.Close()
		return nil, errors.New("the host's /dev/null is not the null device (1:3)")
	}
	return f, nil
}

// openInRoot opens p inside root as O_PATH, every component resolved as
// if root were / (no link leads out); nil if it does not exist. Mounting
// onto /proc/self/fd/N of it then mounts exactly there, whatever the path
// might resolve to by the time of the mount.
func openInRoot(root, p string) (*os.File, error) {
	f, err := pathrs.OpenInRoot(root, p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resolve %s in the container: %w", p, err)
	}
	return f, nil
}

func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// mask hides p: an empty read-only tmpfs over a directory, the host's
// /dev/null over anything else.
func mask(root, p string, null *os.File) error {
	f, err := openInRoot(root, p)
	if f == nil || err != nil {
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = unix.Mount("tmpfs", fdPath(f), "tmpfs", unix.MS_RDONLY, "size=0")
	} else {
		err = unix.Mount(fdPath(null), fdPath(f), "", unix.MS_BIND, "")
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	return nil
}

// readonly binds p read-only over itself, resolved inside root.
func readonly(root, p string) error {
	f, err := openInRoot(root, p)
	if f == nil || err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Mount(fdPath(f), fdPath(f), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", p, err)
	}
	// The bind is a new mount on top: reopen to reach it, not the one below.
	g, err := openInRoot(root, p)
	if g == nil || err != nil {
		return fmt.Errorf("bind %s: gone", p)
	}
	defer g.Close()
	return setReadonly(fdPath(g))
}

// pivotRoot makes root the container's / and detaches the host's tree.
func pivotRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root under the new one; the
	// detach below removes it without needing a directory for it.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}
