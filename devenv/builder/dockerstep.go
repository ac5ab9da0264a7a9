package builder

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/devenv/spec/dockerfile"
	"github.com/devbox/devbox/internal/state"
	"github.com/devbox/devbox/rootfs"
	container "github.com/devbox/devbox/runtime"
)

// dockerStep runs one Dockerfile instruction into tmp/upper, over the
// layers lower. RUN runs in a build container; COPY, ADD and WORKDIR are
// done by devbox on an overlay of the layers, so that they need nothing
// from the image (a scratch or distroless stage copies too) and every
// path resolves inside it.
func dockerStep(ctx context.Context, root state.Root, s *spec.Spec, b *Result, st Step, in stepInputs, tmp string, o Options) error {
	ds, lower, from := st.Docker, b.Lower, in.from
	switch ds.Kind {
	case dockerfile.Run:
		return dockerRun(ctx, s, b, ds, lower, tmp, o, &runMounter{root: root, b: b, st: st, in: in, tmp: tmp, o: o})
	case dockerfile.Workdir:
		return onMerged(lower, tmp, "", func(root string) error {
			uid, gid, err := LookupUser(lower, ds.User)
			if err != nil {
				return err
			}
			return mkdirIn(root, ds.Dest, uid, gid)
		})
	case dockerfile.Copy, dockerfile.Add:
		return onMerged(lower, tmp, "", func(root string) error {
			inline, err := writeInline(ds.Inline, tmp)
			if err != nil {
				return err
			}
			remote, err := b.Plan.remoteMatches(ctx, ds)
			if err != nil {
				return err
			}
			inline = append(remote, inline...)
			switch {
			case len(ds.Sources) == 0:
				return copyStep(ds, lower, &copySource{root: tmp}, root, inline)
			case ds.From != "":
				return onMerged(from, tmp, "from-", func(src string) error {
					return copyStep(ds, lower, &copySource{root: src}, root, inline)
				})
			}
			bc := b.Plan.context
			return copyStep(ds, lower, &copySource{root: bc.dir, context: bc}, root, inline)
		})
	}
	return fmt.Errorf("%s: not a step devbox runs", ds.Kind)
}

// onMerged runs f on the merged view of lower with tmp/PREFIXupper as
// its writable layer, mounted by devbox for the time f runs.
func onMerged(lower []string, tmp, prefix string, f func(root string) error) error {
	upper, work := filepath.Join(tmp, prefix+"upper"), filepath.Join(tmp, prefix+"work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if len(lower) == 0 { // scratch
		empty := filepath.Join(tmp, prefix+"empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return err
		}
		lower = []string{empty}
	}
	m, err := container.MountLayers(lower, upper, work)
	if err != nil {
		return err
	}
	defer m.Close()
	return f("/proc/self/fd/" + strconv.Itoa(int(m.Fd())))
}

// dockerRun runs a RUN instruction in a build container, as its user, in
// its workdir, with its environment (and Docker's defaults for PATH,
// HOME and HOSTNAME).
func dockerRun(ctx context.Context, s *spec.Spec, b *Result, ds *dockerfile.Step, lower []string, tmp string, o Options, rm *runMounter) error {
	uid, gid, err := LookupUser(lower, ds.User)
	if err != nil {
		return err
	}
	if !existsInLayers(lower, strings.TrimPrefix(ds.Workdir, "/")) {
		if err := onMerged(lower, tmp, "", func(root string) error { return mkdirIn(root, ds.Workdir, 0, 0) }); err != nil {
			return err
		}
	}
	env := slices.Clone(ds.Env)
	for _, kv := range ds.ProxyEnv {
		if k, _, _ := strings.Cut(kv, "="); !hasVar(env, k) {
			env = append(env, kv)
		}
	}
	extra, err := rm.prepare(ctx, ds.Mounts)
	defer rm.release()
	if err != nil {
		return err
	}
	extra.network = runNetwork(ds.Network)
	for _, kv := range rm.env {
		// Over the Dockerfile's own, as BuildKit's AddOrReplace.
		k, _, _ := strings.Cut(kv, "=")
		env = append(slices.DeleteFunc(env, func(e string) bool { return strings.HasPrefix(e, k+"=") }), kv)
	}
	if ds.Pipe != nil {
		m, err := pipeMount(ds.Pipe, tmp)
		if err != nil {
			return err
		}
		extra.mounts = append(extra.mounts, m)
	}
	for _, kv := range []string{"PATH=" + container.DefaultPath, "HOME=" + homeOf(lower, uid), "HOSTNAME=" + s.Hostname} {
		if k, _, _ := strings.Cut(kv, "="); !hasVar(env, k) {
			env = append(env, kv)
		}
	}
	proc := container.Process{Args: ds.Args, Env: env, Cwd: ds.Workdir, UID: uid, GID: gid, Groups: SupplementaryGroups(lower, ds.User)}
	stubs := mountStubs(lower, filepath.Join(tmp, "upper"), ds.Mounts)
	if err := runProcess(ctx, s, b, tmp, proc, o, extra); err != nil {
		return err
	}
	return removeStubs(filepath.Join(tmp, "upper"), stubs)
}

func hasVar(env []string, k string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			return true
		}
	}
	return false
}

// mkdirIn makes dir (and its parents) inside root, resolving every
// symbolic link inside it; the directories it makes belong to uid:gid.
func mkdirIn(root, dir string, uid, gid int) error {
	p, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(p); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil
	}
	parent := path.Dir(path.Clean("/" + dir))
	if parent != "/" {
		if err := mkdirIn(root, parent, uid, gid); err != nil {
			return err
		}
	}
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := os.Lchown(p, uid, gid); err != nil {
		return err
	}
	return os.Chmod(p, 0o755) // whatever devbox's umask
}

// copySource is where COPY and ADD read: the build context (its files
// become root's, and .dockerignore applies) or a stage's or an image's
// tree (owners kept).
type copySource struct {
	root    string
	context *buildContext
}

// matches are the files src names in the source.
func (c *copySource) matches(src string) ([]match, error) {
	if c.context != nil {
		return c.context.match(src)
	}
	return matchIn(c.root, src, nil)
}

func (c *copySource) ignored(p string) bool {
	return c.context != nil && c.context.ignored(c.context.rel(p))
}

// copyStep copies a COPY's or ADD's sources, then its heredocs (inline),
// to its destination in root.
func copyStep(ds *dockerfile.Step, lower []string, src *copySource, root string, inline []match) error {
	cp, err := newCopier(ds, lower, src, root)
	if err != nil {
		return err
	}
	var all []match
	for _, s := range ds.Sources {
		m, err := sourceMatches(ds, s, src.matches)
		if err != nil {
			return err
		}
		all = append(all, m...)
	}
	all = append(all, inline...)
	dest := ds.Dest
	intoDir := strings.HasSuffix(dest, "/") || len(all) > 1
	if !intoDir && len(all) == 1 {
		// An existing directory is copied into, as with a trailing slash.
		if p, err := securejoin.SecureJoin(root, dest); err == nil {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				intoDir = true
			}
		}
	}
	for _, m := range all {
		fi, err := os.Stat(m.path)
		if err != nil {
			return err
		}
		to := dest
		if intoDir {
			to = path.Join(dest, m.name)
		}
		switch {
		case fi.IsDir() && m.filter != nil:
			err = cp.filteredTree(m.path, dest, m.filter)
		case fi.IsDir():
			err = cp.tree(m.path, dest)
		case unpacks(ds, src, m) && isArchive(m.path):
			err = cp.unpack(m.path, dest)
		case m.remote != nil:
			err = cp.remoteEntry(m, to)
		default:
			err = cp.entry(m.path, to)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// newCopier is what writes a COPY's files: owned by --chown (names
// resolved in the layers), else root for the context's, else as in the
// source; with --chmod's mode, else the source's.
func newCopier(ds *dockerfile.Step, lower []string, src *copySource, root string) (*copier, error) {
	cp := &copier{src: src, root: root}
	if ds.Chown != "" {
		uid, gid, err := chownIDs(lower, ds.Chown)
		if err != nil {
			return nil, fmt.Errorf("--chown: %w", err)
		}
		cp.owner, cp.chown = &[2]int{uid, gid}, true
		// The directories COPY makes are the owner's, as BuildKit's.
		cp.dirUID, cp.dirGID = uid, gid
	} else if src.context != nil {
		cp.owner = &[2]int{0, 0}
	}
	if ds.Chmod != "" {
		m, err := strconv.ParseUint(ds.Chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return nil, fmt.Errorf("--chmod=%s: not an octal mode", ds.Chmod)
		}
		fm := os.FileMode(m)
		cp.mode = &fm
	}
	return cp, nil
}

// copier writes into root.
type copier struct {
	src   *copySource
	root  string
	owner *[2]int // nil: the source's
	chown bool    // owner is --chown's, which reaches an archive's entries too
	mode  *os.FileMode
	// dirUID and dirGID own the directories made on the way to dest.
	dirUID, dirGID int
}

// tree copies dir's contents into dest.
func (c *copier) tree(dir, dest string) error {
	if err := mkdirIn(c.root, dest, c.dirUID, c.dirGID); err != nil {
		return err
	}
	// "dir/." so that a source that is the tree's root, the merged
	// view's /proc/self/fd/N link (COPY --from=stage / /), is walked into
	// rather than taken for the link it is.
	top := dir + string(filepath.Separator) + "."
	return filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == top {
			return err
		}
		if c.src.ignored(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		return c.entry(p, path.Join(dest, filepath.ToSlash(rel)))
	})
}

// entry copies one file, directory (not its contents) or link to dest,
// resolving dest's directories inside root.
func (c *copier) entry(p, dest string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	if err := mkdirIn(c.root, path.Dir(dest), c.dirUID, c.dirGID); err != nil {
		return err
	}
	parent, err := securejoin.SecureJoin(c.root, path.Dir(dest))
	if err != nil {
		return err
	}
	target := filepath.Join(parent, path.Base(dest))
	perm := os.FileMode(st.Mode & 0o7777)
	if c.mode != nil {
		perm = *c.mode
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		// A directory goes into what is there: a link to a directory is
		// followed inside root (a merged /usr's /lib), as tar's
		// --keep-directory-symlink does.
		if target, err = securejoin.SecureJoin(c.root, dest); err != nil {
			return err
		}
		if fi, err := os.Lstat(target); err == nil && !fi.IsDir() {
			return fmt.Errorf("cannot copy a directory to %s: not a directory", dest)
		}
	} else if _, err := os.Lstat(target); err == nil {
		// A file or link replaces what is there; nothing below follows a
		// link at target (an image's link to /etc/shadow would be the
		// host's, seen from here).
		if err := os.Remove(target); err != nil {
			return fmt.Errorf("replace %s: %w", dest, err)
		}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := os.Mkdir(target, perm); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case unix.S_IFLNK:
		link, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if err := os.Symlink(link, target); err != nil {
			return err
		}
	case unix.S_IFREG:
		if err := copyFile(p, target, perm); err != nil {
			return err
		}
	default:
		return nil // devices, fifos and sockets are not copied
	}
	uid, gid := int(st.Uid), int(st.Gid)
	if c.owner != nil {
		uid, gid = c.owner[0], c.owner[1]
	}
	if err := os.Lchown(target, uid, gid); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// chown clears set-id bits.
		if err := os.Chmod(target, perm); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// copyFile writes src's bytes to a new file dst.
func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// isArchive says p is a tar archive (plain, gzip, bzip2 or xz), which
// ADD unpacks.
func isArchive(p string) bool {
	r, closeFn, err := openArchive(p)
	if err != nil {
		return false
	}
	defer closeFn()
	hdr := make([]byte, 512)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return false
	}
	return string(hdr[257:262]) == "ustar"
}

// openArchive opens p decompressed.
func openArchive(p string) (io.Reader, func(), error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	magic := make([]byte, 6)
	n, _ := io.ReadFull(f, magic)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	magic = magic[:n]
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		return z, func() { z.Close(); f.Close() }, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(f), func() { f.Close() }, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		// xz on the host, as for Node's tarballs.
		cmd := exec.Command("xz", "-dc")
		cmd.Stdin = f
		out, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("xz: %w", err)
		}
		return out, func() { cmd.Process.Kill(); cmd.Wait(); f.Close() }, nil
	}
	return f, func() { f.Close() }, nil
}

// unpack extracts a local archive into dest, as ADD does, with the same
// safety as a layer: nothing lands outside dest.
func (c *copier) unpack(archive, dest string) error {
	if err := mkdirIn(c.root, dest, c.dirUID, c.dirGID); err != nil {
		return err
	}
	dir, err := securejoin.SecureJoin(c.root, dest)
	if err != nil {
		return err
	}
	r, closeFn, err := openArchive(archive)
	if err != nil {
		return err
	}
	defer closeFn()
	if c.chown {
		// As BuildKit's unpack (solver/llbsolver/file/unpack.go): its
		// TarOptions.ChownOpts give every entry --chown's owner.
		rc := chownTar(r, c.owner[0], c.owner[1])
		defer rc.Close()
		r = rc
	}
	if err := rootfs.ExtractTar(r, dir, nil); err != nil {
		return fmt.Errorf("ADD %s: %w", filepath.Base(archive), err)
	}
	return nil
}
