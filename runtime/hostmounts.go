package runtime

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/runtime/userns"
)

// hostMounts are the mounts a container gets from host paths, made by the
// parent and passed to the init over the control socket: the init, an
// unprivileged host uid when the container has a user namespace, never
// resolves a host path itself (the state root is 0700, a project may sit
// in a 0700 home). With a user namespace the image layers and the binds
// are idmapped into it.
type hostMounts struct {
	// root is the overlay, attached in the init's mount namespace at
	// Config.Rootfs (a mount must be attached in a namespace to be mounted
	// on, and only the parent can reach that path).
	root *os.File
	// binds are Config.Mounts, then Config.Files, then with a user
	// namespace Config.Devices, detached.
	binds []*os.File
	// warnings say what could not be idmapped.
	warnings []string
}

// files are the descriptors in the order the init expects them.
func (h *hostMounts) files() []*os.File {
	return append([]*os.File{h.root}, h.binds...)
}

func (h *hostMounts) close() {
	for _, f := range h.files() {
		if f != nil {
			f.Close()
		}
	}
}

// prepareMounts makes the container's overlay and binds for the init
// pid; ns is its user namespace, or nil.
func prepareMounts(c *Config, pid int, ns *os.File) (*hostMounts, error) {
	h := &hostMounts{}
	ok := false
	defer func() {
		if !ok {
			h.close()
		}
	}()
	overlay, err := makeOverlay(c, ns)
	if err != nil {
		return nil, err
	}
	h.root, err = attachRoot(overlay, pid, c.Rootfs)
	overlay.Close()
	if err != nil {
		return nil, err
	}
	for _, m := range c.binds() {
		f, err := h.mount(m, ns, c)
		if err != nil {
			return nil, err
		}
		h.binds = append(h.binds, f)
	}
	if c.nodesByBind() && len(c.Devices) > 0 {
		var devs []*os.File
		if c.UserNS != nil {
			devs, err = deviceNodes(c.Devices, c.UserNS)
		} else {
			devs, err = hostNodes(c.Devices)
		}
		if err != nil {
			return nil, err
		}
		h.binds = append(h.binds, devs...)
	}
	ok = true
	return h, nil
}

// hostNodes are the host's device nodes at paths, cloned as binds: for a
// caller already in a user namespace (rootless), which can make no node,
// and whose container root is the caller, with the caller's access to them.
func hostNodes(paths []string) ([]*os.File, error) {
	var nodes []*os.File
	for _, p := range paths {
		// Checked through the clone itself: the path may change meanwhile.
		fd, err := unix.OpenTree(unix.AT_FDCWD, p, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err == nil {
			var st unix.Stat_t
			err = unix.Fstat(fd, &st)
			if t := st.Mode & unix.S_IFMT; err == nil && t != unix.S_IFCHR && t != unix.S_IFBLK {
				err = errors.New("not a device node")
			}
			if err != nil {
				unix.Close(fd)
			}
		}
		if err != nil {
			for _, n := range nodes {
				n.Close()
			}
			return nil, fmt.Errorf("device %s: %w", p, err)
		}
		nodes = append(nodes, os.NewFile(uintptr(fd), p))
	}
	return nodes, nil
}

// deviceNodes makes the host devices at paths for a container with a user
// namespace, where the init can neither make a node nor open the host's
// own (root's, and often 0600): copies made on a detached tmpfs of the
// host's, owned by the container's root, each cloned as a bind to attach.
func deviceNodes(paths []string, m *userns.IDMap) ([]*os.File, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigCreate(fs); err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	dir, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	defer unix.Close(dir)
	var nodes []*os.File
	ok := false
	defer func() {
		for _, n := range nodes {
			if !ok {
				n.Close()
			}
		}
	}()
	for i, p := range paths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return nil, fmt.Errorf("device %s: %w", p, err)
		}
		if t := st.Mode & unix.S_IFMT; t != unix.S_IFCHR && t != unix.S_IFBLK {
			return nil, fmt.Errorf("device %s is not a device node", p)
		}
		name := strconv.Itoa(i)
		if err := unix.Mknodat(dir, name, st.Mode, int(st.Rdev)); err != nil {
			return nil, fmt.Errorf("device %s: %w", p, err)
		}
		if err := unix.Fchmodat(dir, name, st.Mode&0o7777, 0); err != nil {
			return nil, err
		}
		if err := unix.Fchownat(dir, name, int(m.UID), int(m.GID), 0); err != nil {
			return nil, err
		}
		fd, err := unix.OpenTree(dir, name, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", p, err)
		}
		nodes = append(nodes, os.NewFile(uintptr(fd), p))
	}
	ok = true
	return nodes, nil
}

// attachRoot attaches the detached overlay at dir in the mount namespace
// of the init pid and returns its root, opened there. It runs on a thread
// of its own that joins that namespace, and first stops propagation from
// it, so that nothing mounted there reaches the host.
func attachRoot(overlay *os.File, pid int, dir string) (*os.File, error) {
	mntns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/mnt")
	if err != nil {
		return nil, fmt.Errorf("container mount namespace: %w", err)
	}
	defer mntns.Close()
	return onThread(func() (*os.File, error) {
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return nil, err
		}
		if err := unix.Setns(int(mntns.Fd()), unix.CLONE_NEWNS); err != nil {
			return nil, fmt.Errorf("join container mount namespace: %w", err)
		}
		if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			return nil, fmt.Errorf("container mount namespace: make / rslave: %w", err)
		}
		if err := unix.MoveMount(int(overlay.Fd()), "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return nil, fmt.Errorf("attach the root file system at %s: %w", dir, err)
		}
		return os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
}

// makeOverlay mounts the layers as a detached overlay. Overlay takes its
// layers from the mounts of the caller's namespace (kernels before 6.15
// refuse a detached one, as an idmapped layer is until attached), and the
// classic mount(2) attaches what it mounts: so the overlay is made on a
// thread of its own, in a private mount namespace where the idmapped
// layers are attached over their own directories, and only the detached
// overlay outlives it. Every directory is named by a descriptor, so that
// no path needs escaping and the classic option string stays short.
func makeOverlay(c *Config, ns *os.File) (*os.File, error) {
	if len(c.Lower) == 0 {
		return nil, errors.New("overlay: no lower layers")
	}
	return inPrivateMountNS(func() (*os.File, error) {
		var fds []int
		defer func() {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}()
		open := func(p string) (int, error) {
			fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return -1, fmt.Errorf("overlay: open %s: %w", p, err)
			}
			fds = append(fds, fd)
			return fd, nil
		}
		var lower []int
		for _, l := range c.Lower {
			if ns != nil {
				if err := attachIdmapped(l, ns); err != nil {
					return nil, fmt.Errorf("overlay: layer %s: %w", l, err)
				}
			}
			fd, err := open(l)
			if err != nil {
				return nil, err
			}
			lower = append(lower, fd)
		}
		if c.UserNS != nil {
			if err := ownUpper(c.Upper, c.UserNS); err != nil {
				return nil, fmt.Errorf("overlay: %w", err)
			}
		}
		upper, err := open(c.Upper)
		if err != nil {
			return nil, err
		}
		work, err := open(c.Work)
		if err != nil {
			return nil, err
		}
		return mountOverlay(lower, upper, work, c.Work, true)
	})
}

// attachIdmapped mounts an idmapped clone of dir over dir itself (a
// symbolic link to it is followed).
func attachIdmapped(dir string, ns *os.File) error {
	d, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(d)
	fd, err := unix.OpenTree(d, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := userns.Idmap(fd, ns); err != nil {
		return err
	}
	return unix.MoveMount(fd, "", d, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

// ownUpper gives the writable layer's root to the container's root: the
// overlay's root directory is the upper's, and one owned by an id outside
// the range would be nobody's inside, where root could not write to /.
func ownUpper(upper string, m *userns.IDMap) error {
	var st unix.Stat_t
	if err := unix.Lstat(upper, &st); err != nil {
		return err
	}
	if st.Uid >= m.UID && st.Uid-m.UID < m.Size {
		return nil
	}
	return unix.Lchown(upper, int(m.UID), int(m.GID))
}

// inPrivateMountNS runs f on a thread of its own, in a private copy of
// the mount namespace with a working directory of its own; nothing it
// attaches is seen by anyone else, and all of it goes with the thread.
func inPrivateMountNS(f func() (*os.File, error)) (*os.File, error) {
	return onThread(func() (*os.File, error) {
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			return nil, fmt.Errorf("private mount namespace: %w", err)
		}
		if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
			return nil, fmt.Errorf("private mount namespace: %w", err)
		}
		return f()
	})
}

// onThread runs f on an OS thread that is thrown away afterwards, for f
// to change what is per thread (namespaces, working directory).
func onThread(f func() (*os.File, error)) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	done := make(chan result)
	go func() {
		// Never unlocked: the thread dies with the goroutine.
		goruntime.LockOSThread()
		f, err := f()
		done <- result{f, err}
	}()
	r := <-done
	return r.f, r.err
}

// mountOverlay creates the overlay and returns it as a detached mount,
// nodev (devices only in /dev). The new mount API takes the lower layers
// one at a time (lowerdir+, kernel 6.8), so any stack fits; older kernels
// take the classic way (see mountOverlayClassic), as do all without
// tryAppend. It runs in a private mount namespace (inPrivateMountNS);
// target is a directory there that the classic way may mount on.
func mountOverlay(lower []int, upper, work int, target string, tryAppend bool) (*os.File, error) {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("overlay: fsopen (needs kernel 5.2 and the overlay module): %w", err)
	}
	defer unix.Close(fd)
	if !tryAppend || !overlayAppendsLower(fd, procFD(lower[0])) {
		return mountOverlayClassic(lower, upper, work, target)
	}
	set := func(k string, v int) error {
		if err := unix.FsconfigSetString(fd, k, procFD(v)); err != nil {
			return fmt.Errorf("overlay: %s: %w", k, err)
		}
		return nil
	}
	for _, l := range lower[1:] {
		if err := set("lowerdir+", l); err != nil {
			return nil, err
		}
	}
	if err := set("upperdir", upper); err != nil {
		return nil, err
	}
	if err := set("workdir", work); err != nil {
		return nil, err
	}
	if !userns.Initial() {
		if err := unix.FsconfigSetFlag(fd, "userxattr"); err != nil {
			return nil, fmt.Errorf("overlay: userxattr (needs kernel 5.11): %w", err)
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return nil, fmt.Errorf("overlay: create with %d layers: %w", len(lower), err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return nil, fmt.Errorf("overlay: fsmount: %w", err)
	}
	return os.NewFile(uintptr(mfd), "overlay"), nil
}

func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// overlayAppendsLower sets first as the top layer with lowerdir+ and
// reports whether the overlay context fd understood it (kernel 6.8).
// Before 6.5 overlay had no fs_context of its own: the generic "legacy"
// one stores any key and fails only at create (EINVAL), so a key that no
// overlay knows must be refused as well.
func overlayAppendsLower(fd int, first string) bool {
	if unix.FsconfigSetString(fd, "lowerdir+", first) != nil {
		return false // 6.5–6.7: native context without lowerdir+
	}
	return unix.FsconfigSetFlag(fd, "devbox-probe") != nil
}

// mountOverlayClassic mounts with mount(2) and one lowerdir= string, as
// kernels before 6.8 need (fsconfig takes no value over 255 bytes; mount
// takes a page), and returns a detached copy. Absolute layer paths would
// allow some 40 layers; named by descriptor number relative to
// /proc/self/fd as the working directory ("lowerdir=7:8:9") they take
// 2–4 bytes each, which fits overlay's own maximum of 500. It runs in a
// private mount namespace, whose working directory is its own.
func mountOverlayClassic(lower []int, upper, work int, target string) (*os.File, error) {
	opts, err := overlayOptions(lower, upper, work)
	if err != nil {
		return nil, err
	}
	if err := unix.Chdir("/proc/self/fd"); err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	// Any directory would do, as the namespace goes with the thread; by
	// path, as a magic link (/proc/self/fd/N) would not lead into the
	// mount made on it.
	if err := unix.Mount("overlay", target, "overlay", unix.MS_NODEV, opts); err != nil {
		return nil, fmt.Errorf("overlay: mount %d layers: %w", len(lower), err)
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, target, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("overlay: detach: %w", err)
	}
	return os.NewFile(uintptr(fd), "overlay"), nil
}

// pageSize is the kernel's limit for mount(2)'s option string, with its
// terminating NUL (copy_mount_options copies one page).
const pageSize = 4096

// overlayOptions is the classic overlay option string for directories
// given as descriptor numbers, or an error when it exceeds a page.
func overlayOptions(lower []int, upper, work int) (string, error) {
	if len(lower) == 0 {
		return "", errors.New("overlay: no lower layers")
	}
	var b strings.Builder
	b.WriteString("lowerdir=")
	for i, fd := range lower {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(fd))
	}
	fmt.Fprintf(&b, ",upperdir=%d,workdir=%d", upper, work)
	if !userns.Initial() {
		b.WriteString(",userxattr") // see mountOverlay
	}
	if b.Len() >= pageSize {
		return "", fmt.Errorf("overlay: %d layers need %d bytes of mount options, over the kernel's %d; "+
			"this kernel has no lowerdir+ (needs kernel 6.8): use an image with fewer layers", len(lower), b.Len(), pageSize-1)
	}
	return b.String(), nil
}

// MountLayers mounts layers (top first) as a detached overlay whose
// writable layer is upper, work being its overlay work directory: a tree
// devbox changes itself, without a container (a Dockerfile's COPY). Files
// show with the ids they are stored with. Close the result to unmount;
// its path is /proc/self/fd/N while open.
func MountLayers(lower []string, upper, work string) (*os.File, error) {
	return makeOverlay(&Config{Lower: lower, Upper: upper, Work: work}, nil)
}
