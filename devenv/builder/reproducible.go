package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
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

// sourceDateEpoch is the epoch of a build of s and where it comes from.
// A Dockerfile's SOURCE_DATE_EPOCH build argument sets it, as it does
// BuildKit's. Else a spec with a devbox.lock has the lock's (none when
// it records none: an older lock keeps its keys, and so its pins); one
// without a lock yet has the time of the last commit of its file, which
// the lock written after the build then records; otherwise none (0).
func sourceDateEpoch(s *spec.Spec) (int64, string, error) {
	if v, ok := s.Dockerfile.Args["SOURCE_DATE_EPOCH"]; ok && s.BaseRef.Kind == rootfs.KindDockerfile {
		t, err := strconv.ParseInt(v, 10, 64)
		if err != nil || t < 0 {
			return 0, "", fmt.Errorf("build argument SOURCE_DATE_EPOCH=%q: want seconds since 1970", v)
		}
		return t, "the SOURCE_DATE_EPOCH build argument", nil
	}
	if s.File == "" {
		return 0, "", nil
	}
	switch f, err := lock.Read(lock.Path(s.File)); {
	case err != nil:
		return 0, "", nil // a broken lock is the build's to report
	case f != nil && f.SourceDateEpoch != 0:
		return f.SourceDateEpoch, lock.FileName, nil
	case f != nil:
		return 0, "", nil // an older lock: its keys, and so its pins, stay
	}
	if t := lastCommit(s.File); t != 0 {
		return t, "the last git commit of " + filepath.Base(s.File), nil
	}
	return 0, "", nil
}

// lastCommit is the commit time of the last commit that touched file, or
// 0 (not in a repository, no git, not committed). git reads the
// repository found above file, named explicitly (no discovery of another
// one placed in the tree), with nothing of its config that runs a
// program on `log` (signature checks); git's own ownership rule applies.
func lastCommit(file string) int64 {
	gitDir, top := findGitDir(filepath.Dir(file))
	if gitDir == "" {
		return 0 // most specs outside git: no git to start on each build
	}
	rel, err := filepath.Rel(top, file)
	if err != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "--git-dir="+gitDir, "--work-tree="+top,
		"-c", "log.showSignature=false", "-c", "core.fsmonitor=false", "-c", "safe.bareRepository=explicit",
		"log", "-1", "--no-show-signature", "--format=%ct", "--", rel)
	cmd.Dir = top
	cmd.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0", "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1")
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

// findGitDir is the .git of the working tree dir is in, and the tree's
// top, or "".
func findGitDir(dir string) (gitDir, top string) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return filepath.Join(d, ".git"), d
		}
		if filepath.Dir(d) == d {
			return "", ""
		}
	}
}

// buildNoise are files that record when or how a step ran rather than
// what it made: package managers' logs, ldconfig's stat cache, apt's
// binary caches, npm's and pip's caches and logs (root's and the
// users'). A reproducible step's layer leaves them out, as the
// reproducible-builds project's tools strip them. A * stands for one
// path element.
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
	"home/*/.npm/_logs",
	"home/*/.npm/_cacache",
	"home/*/.npm/_update-notifier-last-checked",
	"home/*/.cache/pip",
}

// isNoise reports whether rel is, or is under, a buildNoise path.
func isNoise(rel string) bool {
	parts := strings.Split(rel, "/")
	for _, pattern := range buildNoise {
		pp := strings.Split(pattern, "/")
		if len(parts) < len(pp) {
			continue
		}
		match := true
		for i, p := range pp {
			if ok, _ := path.Match(p, parts[i]); !ok {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// makeReproducible makes a step's layer directory upper, over the layers
// lower (top first), the same for the same inputs: with noise set, it
// drops build noise, and it sets every time later than epoch, or from
// since on (what the step wrote, when the epoch is ahead of the clock),
// to epoch. It walks the tree without following links: the step made
// it, and a link in it may point anywhere on the host.
func makeReproducible(upper string, lower []string, epoch int64, since time.Time, noise bool) error {
	var paths []string
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		if noise && rel != "." && isNoise(rel) && dropsCleanly(d, lower, rel) {
			return os.Remove(p)
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	return clampTimes(paths, epoch, since)
}

// dropsCleanly says whether removing the noise entry d at rel from the
// step's layer leaves what the step meant: files and links only (a
// directory stays, and a whiteout, which would bring back what the step
// removed), and only where the layers below have nothing of another type
// there that would show through (a cache directory the step replaced by
// a link).
func dropsCleanly(d fs.DirEntry, lower []string, rel string) bool {
	t := d.Type()
	if !t.IsRegular() && t&fs.ModeSymlink == 0 {
		return false
	}
	below := rootfs.StatInLayers(lower, rel)
	return below == nil || below.Mode().Type() == t
}

// clampTimes sets the mtime (and atime) of each of paths, deepest first,
// to epoch where it is later than epoch or not before since. Links are
// not followed.
func clampTimes(paths []string, epoch int64, since time.Time) error {
	limit := unix.Timespec{Sec: epoch}
	from := unix.NsecToTimespec(since.UnixNano())
	for i := len(paths) - 1; i >= 0; i-- {
		var st unix.Stat_t
		if err := unix.Lstat(paths[i], &st); err != nil {
			return err
		}
		later := st.Mtim.Sec > epoch || st.Mtim.Sec == epoch && st.Mtim.Nsec > 0
		written := st.Mtim.Sec > from.Sec || st.Mtim.Sec == from.Sec && st.Mtim.Nsec >= from.Nsec
		if st.Mtim == limit || !later && !written {
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

// maxDifferences is how many differing paths --check names.
const maxDifferences = 10

// ErrNotReproducible is a step whose two builds (--check) differ.
var ErrNotReproducible = errors.New("not reproducible")

// layerDifference says how two builds of one step, the layer directories
// a and b, whose diffIDs differ, differ: the first paths and how.
func layerDifference(ctx context.Context, a, b string) error {
	diffs, err := rootfs.CompareLayers(ctx, a, b)
	if err != nil {
		return err
	}
	n := len(diffs)
	if n == 0 {
		return fmt.Errorf("%w: the two builds of the step give layers with different diffIDs", ErrNotReproducible)
	}
	if n > maxDifferences {
		diffs = append(diffs[:maxDifferences], fmt.Sprintf("… and %d more", n-maxDifferences))
	}
	return fmt.Errorf("%w: two builds of the step differ in %d path(s):\n  %s", ErrNotReproducible, n, strings.Join(diffs, "\n  "))
}
