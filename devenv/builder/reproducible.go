package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/devenv/lock"
	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/rootfs"
)

// A build is reproducible when it has a source date epoch, as the
// reproducible-builds project defines SOURCE_DATE_EPOCH: steps see it in
// their environment, every time a step's files carry is clamped to it,
// and what package managers leave behind that says when or in which
// order they ran is dropped. Then the same step on the same inputs gives
// the same layer, and the same diffID, on any machine and any day.

// sourceDateEpoch is the epoch of a build of s and where it comes from:
// the one devbox.lock records, else the time of the last commit of the
// spec's directory (which the lock then records), else none (0).
func sourceDateEpoch(s *spec.Spec) (int64, string) {
	if s.File == "" {
		return 0, ""
	}
	if f, err := lock.Read(lock.Path(s.File)); err == nil && f != nil && f.SourceDateEpoch != 0 {
		return f.SourceDateEpoch, lock.FileName
	}
	if t := lastCommit(filepath.Dir(s.File)); t != 0 {
		return t, "the last git commit of " + filepath.Dir(s.File)
	}
	return 0, ""
}

// lastCommit is the commit time of the last commit that touched dir, or
// 0 (not a repository, no git, nothing committed). git's own safety
// rules apply: a repository another user owns is not read.
func lastCommit(dir string) int64 {
	if !inGitTree(dir) {
		return 0 // most specs outside git: no git to start on each build
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "log", "-1", "--format=%ct", "--", ".")
	cmd.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.Output()
	if err != nil {
		return 0
	}
	t, err := strconv.ParseInt(string(bytes.TrimSpace(out)), 10, 64)
	if err != nil || t < 0 {
		return 0
	}
	return t
}

// inGitTree reports whether dir or a directory above it has a .git.
func inGitTree(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return true
		}
		if filepath.Dir(d) == d {
			return false
		}
	}
}

// buildNoise are files that record when or how a step ran rather than
// what it made: package managers' logs, ldconfig's stat cache, apt's
// binary caches, npm's and pip's caches and logs. A reproducible step's
// layer leaves them out, as the reproducible-builds project's tools
// strip them.
var buildNoise = []string{
	"var/log/apt",
	"var/log/dpkg.log",
	"var/log/alternatives.log",
	"var/log/fontconfig.log",
	"var/log/yum.log",
	"var/log/dnf.log",
	"var/log/dnf.librepo.log",
	"var/log/dnf.rpm.log",
	"var/log/hawkey.log",
	"var/log/apk.log",
	"var/cache/ldconfig/aux-cache",
	"var/cache/apt/pkgcache.bin",
	"var/cache/apt/srcpkgcache.bin",
	"root/.npm/_logs",
	"root/.npm/_cacache",
	"root/.npm/_update-notifier-last-checked",
	"root/.cache/pip",
}

// makeReproducible drops build noise from the layer directory upper (a
// step's writable layer) and clamps every time in it to epoch.
func makeReproducible(upper string, epoch int64) error {
	for _, pattern := range buildNoise {
		matches, err := filepath.Glob(filepath.Join(upper, pattern))
		if err != nil {
			return err
		}
		for _, m := range matches {
			if err := dropFiles(m); err != nil {
				return err
			}
		}
	}
	return clampTimes(upper, epoch)
}

// dropFiles removes the files and links at or under p. Directories stay,
// and so do whiteouts (character devices): dropping those would bring
// back below what the step removed.
func dropFiles(p string) error {
	return filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if t := d.Type(); t.IsRegular() || t&fs.ModeSymlink != 0 {
			return os.Remove(q)
		}
		return nil
	})
}

// clampTimes sets every mtime (and atime) in dir later than epoch to
// epoch, deepest first so that a directory's own time is set after its
// entries are. Links are not followed.
func clampTimes(dir string, epoch int64) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	limit := unix.Timespec{Sec: epoch}
	for i := len(paths) - 1; i >= 0; i-- {
		var st unix.Stat_t
		if err := unix.Lstat(paths[i], &st); err != nil {
			return err
		}
		if st.Mtim.Sec < epoch || st.Mtim == limit {
			continue
		}
		ts := []unix.Timespec{limit, limit}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return nil
}

// epochEnv is the environment a step of an epoch'd build runs with.
func epochEnv(epoch int64) []string {
	if epoch == 0 {
		return nil
	}
	return []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(epoch, 10)}
}

// hasEnv reports whether env sets name.
func hasEnv(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

// maxDifferences is how many differing paths --check names.
const maxDifferences = 10

// ErrNotReproducible is a step whose two builds (--check) differ.
var ErrNotReproducible = errors.New("not reproducible")

// sameLayers compares two builds of one step, the layer directories a and
// b, and fails naming the first paths that differ and how.
func sameLayers(a, b string) error {
	diffs, err := rootfs.CompareLayers(a, b)
	if err != nil || len(diffs) == 0 {
		return err
	}
	n := len(diffs)
	if n > maxDifferences {
		diffs = append(diffs[:maxDifferences], fmt.Sprintf("… and %d more", n-maxDifferences))
	}
	return fmt.Errorf("%w: two builds of the step differ in %d path(s):\n  %s", ErrNotReproducible, n, strings.Join(diffs, "\n  "))
}
