package userns

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Size is how many ids a container gets: every 16-bit id, as images
// expect (nobody is 65534).
const Size = 65536

// IDMap maps container ids [0, Size) to host ids [UID, UID+Size) and
// [GID, GID+Size).
type IDMap struct {
	UID  uint32 `json:"uid"`
	GID  uint32 `json:"gid"`
	Size uint32 `json:"size"`
}

func (m IDMap) String() string {
	return fmt.Sprintf("uids %d-%d, gids %d-%d", m.UID, m.UID+m.Size-1, m.GID, m.GID+m.Size-1)
}

// UIDMappings and GIDMappings are m in the form syscall.SysProcAttr takes.
func (m IDMap) UIDMappings() []syscall.SysProcIDMap {
	return []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.UID), Size: int(m.Size)}}
}

func (m IDMap) GIDMappings() []syscall.SysProcIDMap {
	return []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.GID), Size: int(m.Size)}}
}

// OwnerMap is the mapping of an idmapped bind mount that shows the files
// of host owner (ouid, ogid) as container user (cuid, cgid) of a container
// mapped by m, and stores that user's new files as the host owner's. It
// maps nothing else: every other owner shows as nobody, and no process of
// the container can make a file on the host owned by anyone but the
// owner (container root's chown to another id fails with EOVERFLOW). A
// mapping of the whole range would store container root's files as the
// host's root, setuid bit and all.
func (m IDMap) OwnerMap(ouid, ogid, cuid, cgid uint32) (uids, gids []syscall.SysProcIDMap, err error) {
	if cuid >= m.Size || cgid >= m.Size {
		return nil, nil, fmt.Errorf("container user %d:%d is outside the user namespace's %d ids", cuid, cgid, m.Size)
	}
	uids = []syscall.SysProcIDMap{{ContainerID: int(ouid), HostID: int(m.UID + cuid), Size: 1}}
	gids = []syscall.SysProcIDMap{{ContainerID: int(ogid), HostID: int(m.GID + cgid), Size: 1}}
	return uids, gids, nil
}

// New makes a user namespace with the given mappings and returns it, open;
// it exists to carry a mapping for idmapped mounts. A child is forked into
// it with ptrace's stop at exec, so that nothing runs there; it is killed
// once its namespace is open (the descriptor keeps the namespace alive).
func New(uids, gids []syscall.SysProcIDMap) (*os.File, error) {
	// The tracer is a thread: fork, wait and kill from the same one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"devbox-userns"}, &syscall.ProcAttr{
		Env: []string{},
		Sys: &syscall.SysProcAttr{
			Cloneflags:                 unix.CLONE_NEWUSER,
			UidMappings:                uids,
			GidMappings:                gids,
			GidMappingsEnableSetgroups: true,
			Ptrace:                     true,
			Pdeathsig:                  unix.SIGKILL,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("user namespace: %w", err)
	}
	defer func() {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != unix.EINTR {
				break
			}
		}
	}()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/user")
	if err != nil {
		return nil, fmt.Errorf("user namespace: %w", err)
	}
	return f, nil
}

// ErrNoIDMap is returned by Idmap when the kernel or the file system
// cannot idmap a mount.
var ErrNoIDMap = errors.New("idmapped mounts are not supported here")

// Idmap makes the detached mount mfd (from open_tree with OPEN_TREE_CLONE)
// show its files through the user namespace ns's mapping.
func Idmap(mfd int, ns *os.File) error {
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	err := unix.MountSetattr(mfd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w (%v)", ErrNoIDMap, err)
	}
	return err
}

// Check reports why a container over the image layer dir cannot have a
// user namespace on this host, or nil: overlay takes idmapped layers from
// kernel 5.19, and the layer's file system must support idmapped mounts
// (ext4, xfs and btrfs do; tmpfs from 6.3).
func Check(dir string) error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return err
	}
	release := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	fmt.Sscanf(release, "%d.%d", &major, &minor)
	if major < 5 || major == 5 && minor < 19 {
		return fmt.Errorf("overlay takes idmapped layers from kernel 5.19; this is %s", release)
	}
	one := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}}
	ns, err := New(one, one)
	if err != nil {
		return err
	}
	defer ns.Close()
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := Idmap(fd, ns); err != nil {
		return fmt.Errorf("the file system of %s: %w", dir, err)
	}
	return nil
}

// Initial reports whether this process runs in the host's user namespace,
// where root may do anything; rootless devbox, or a caller in another
// container, does not. devbox never changes its own user namespace, so
// the answer is read once.
var Initial = sync.OnceValue(func() bool {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false // no /proc to tell: assume the lesser rights
	}
	f := strings.Fields(string(data))
	return len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
})

// OverlayXattrs is the prefix of overlayfs's own xattrs (opaque,
// redirect, origin) in the layers of this process: trusted.overlay. for
// the host's root; in a user namespace, whose root cannot set trusted
// xattrs, user.overlay., and overlay is mounted with userxattr to read
// them there.
func OverlayXattrs() string {
	if Initial() {
		return "trusted.overlay."
	}
	return "user.overlay."
}

// IsOverlayXattr reports whether name is one of overlayfs's xattrs, of
// either kind: a layer must never set them (overlay trusts them).
func IsOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}
