package userns

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
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
// mapped by m, and stores that user's files as the host owner's: the ids
// the mount shows are m's, with the two swapped. A disk id d appears as
// host id HostID(d) in the mount, i.e. as container id d, except ouid
// (shown as cuid) and cuid (shown as ouid, if ouid is in range at all).
func (m IDMap) OwnerMap(ouid, ogid, cuid, cgid uint32) (uids, gids []syscall.SysProcIDMap) {
	return swapped(ouid, cuid, m.UID, m.Size), swapped(ogid, cgid, m.GID, m.Size)
}

// swapped maps disk ids to host ids base+d for d in [0, size), except that
// owner maps to base+as and, when owner is in range, as maps to
// base+owner.
func swapped(owner, as, base, size uint32) []syscall.SysProcIDMap {
	var maps []syscall.SysProcIDMap
	add := func(disk, host, n uint32) {
		if n > 0 {
			maps = append(maps, syscall.SysProcIDMap{ContainerID: int(disk), HostID: int(host), Size: int(n)})
		}
	}
	if owner == as {
		add(0, base, size)
		return maps
	}
	// The identity part over [0, size), with holes at as and at owner.
	holes := []uint32{as}
	if owner < size {
		holes = append(holes, owner)
	}
	if len(holes) == 2 && holes[1] < holes[0] {
		holes[0], holes[1] = holes[1], holes[0]
	}
	start := uint32(0)
	for _, h := range holes {
		add(start, base+start, h-start)
		start = h + 1
	}
	add(start, base+start, size-start)
	add(owner, base+as, 1)
	if owner < size {
		add(as, base+owner, 1)
	}
	return maps
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
