package runtime

import (
	"os"

	"golang.org/x/sys/unix"
)

// The login owns the project tree's files on the host (root's, for root's
// project: see devenv's projectTree for when that is lent at all) and may
// chmod them, or give them file capabilities. Inside, every bind is
// nosuid; on the host such a file would run with its owner's rights for
// whoever can reach it. So at the container's end the files of the tree
// it changed lose their set-id bits and capabilities.
//
// The walk is by descriptor, one directory open at a time: it never
// follows a symlink, never builds a path (a tree deeper than PATH_MAX is
// walked whole), opens no FIFO or device, and climbs back by "..", each
// step checked against the directory it left, so that a container still
// running on the tree cannot steer it onto a host file.

// capXattr holds a file's capabilities.
const capXattr = "security.capability"

// clearSetID sweeps project p for files changed since since (ctime, Unix
// ns) and returns how many it changed.
func clearSetID(p *Project, since int64) int {
	if p == nil {
		return 0
	}
	fd, err := unix.Open(p.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Dev != p.Dev || st.Ino != p.Ino {
		unix.Close(fd) // the path names another directory now
		return 0
	}
	w := sweep{p: p, since: since}
	w.walk(fd, st)
	return w.changed
}

// sweep is one walk of a project tree.
type sweep struct {
	p       *Project
	since   int64
	changed int
}

// level is a directory on the way down: its identity, and the
// subdirectories still to visit.
type level struct {
	dev, ino uint64
	todo     []string
}

// walk visits the tree whose root is the open directory fd (st), depth
// first, and closes fd.
func (w *sweep) walk(fd int, st unix.Stat_t) {
	stack := []level{{st.Dev, st.Ino, w.visit(fd)}}
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if len(top.todo) == 0 {
			stack = stack[:len(stack)-1]
			if len(stack) == 0 || !w.climb(&fd, stack[len(stack)-1]) {
				break
			}
			continue
		}
		name := top.todo[0]
		top.todo = top.todo[1:]
		child, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		var cst unix.Stat_t
		if unix.Fstat(child, &cst) != nil {
			unix.Close(child)
			continue
		}
		unix.Close(fd)
		fd = child
		stack = append(stack, level{cst.Dev, cst.Ino, w.visit(fd)})
	}
	unix.Close(fd)
}

// climb moves *fd to its parent, which must be up (the level it came
// from); a directory moved meanwhile ends the walk.
func (w *sweep) climb(fd *int, up level) bool {
	parent, err := unix.Openat(*fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	unix.Close(*fd)
	*fd = -1
	if err != nil {
		return false
	}
	var st unix.Stat_t
	if unix.Fstat(parent, &st) != nil || st.Dev != up.dev || st.Ino != up.ino {
		unix.Close(parent)
		return false
	}
	*fd = parent
	return true
}

// visit clears the regular files of the open directory fd and returns
// its subdirectories' names.
func (w *sweep) visit(fd int) []string {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil
	}
	dir := os.NewFile(uintptr(dup), "")
	entries, _ := dir.ReadDir(-1)
	dir.Close()
	var subdirs []string
	for _, e := range entries {
		switch {
		case e.IsDir():
			subdirs = append(subdirs, e.Name())
		case e.Type().IsRegular() && w.clearFile(fd, e.Name()):
			w.changed++
		}
	}
	return subdirs
}

// clearFile takes the set-id bits and capabilities off name in the
// directory fd if the tree's owner owns it and it changed since the
// start; it reports whether it did.
func (w *sweep) clearFile(dirfd int, name string) bool {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Ctim.Nano() < w.since {
		return false
	}
	// Through the descriptor: the file judged is the file changed.
	path := procFD(fd)
	changed := false
	bits := uint32(0)
	if st.Uid == w.p.HostUID {
		bits |= unix.S_ISUID
	}
	if st.Gid == w.p.HostGID {
		bits |= unix.S_ISGID
	}
	if st.Mode&bits != 0 && unix.Fchmodat(unix.AT_FDCWD, path, st.Mode&0o7777&^bits, 0) == nil {
		changed = true
	}
	if st.Uid == w.p.HostUID {
		if _, err := unix.Getxattr(path, capXattr, nil); err == nil && unix.Removexattr(path, capXattr) == nil {
			changed = true
		}
	}
	return changed
}
