package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/runtime/devices"
	"github.com/devbox/devbox/runtime/userns"
)

const cgroupRoot = "/sys/fs/cgroup"

// cgroup is a container's cgroup: one directory on the unified hierarchy
// (v2), or one per controller (v1).
type cgroup struct {
	dirs []string
}

// newCgroup creates the cgroup for id with limits, or returns nil when
// there is nothing to limit. It goes under devbox's own cgroup, so that a
// limit devbox runs under also holds for its containers.
// plannedCgroups are the directories (as recorded: under /sys/fs/cgroup)
// that newCgroup makes for id, named before any exists, so that a record
// written first covers them whenever devbox is killed. On v1 it names
// every controller devbox may use; those never made are simply absent.
func plannedCgroups(id string) []string {
	if cgroupV2() {
		own, err := parentCgroupV2()
		if err != nil {
			return nil
		}
		return []string{filepath.Join(cgroupRoot, own, cgroupName(id))}
	}
	own, err := ownCgroups()
	if err != nil {
		return nil
	}
	var dirs []string
	for _, ctrl := range []string{"devices", "memory", "pids", "cpu"} {
		dirs = append(dirs, v1Dir(ctrl, own[ctrl], id))
	}
	return dirs
}

// cgroupName is the name of container id's cgroup.
func cgroupName(id string) string { return "devbox-" + id }

// v1Dir is the recorded directory of container id's cgroup in the v1
// hierarchy of ctrl, under own, the caller's cgroup there.
func v1Dir(ctrl, own, id string) string { return filepath.Join(cgroupRoot, ctrl, own, cgroupName(id)) }

// parentCgroupV2 is the v2 cgroup containers go under: the caller's own,
// or its parent when an earlier devbox moved the caller into devbox-leaf.
func parentCgroupV2() (string, error) {
	own, err := ownCgroupV2()
	if err != nil {
		return "", err
	}
	if filepath.Base(own) == leafName {
		own = filepath.Dir(own)
	}
	return own, nil
}

// Every container gets a cgroup, limits or not: it carries the device
// policy (rules), which no container may run without, and on v2 it is the
// root of what the container sees in /sys/fs/cgroup (cgroupns).
func newCgroup(id string, l Limits, rules []devices.Rule) (*cgroup, error) {
	if !cgroupV2() {
		return newCgroupV1(id, l, rules)
	}
	cg, err := newCgroupV2(id, l)
	if err != nil {
		return nil, err
	}
	if err := devices.AttachV2(resolveCgroup(cg.dirs[0]), rules); err != nil {
		cg.remove()
		return nil, fmt.Errorf("device policy: %w", err)
	}
	return cg, nil
}

// containerCgroup is newCgroup for the host's root. In a user namespace
// (rootless, or a caller in another container) only a cgroup v2 subtree
// delegated to the caller can be used, and with no device policy: that
// takes a BPF program, which only the host's root may attach. The user
// namespace keeps the container from making device nodes; it has the
// host's own null, zero, random and tty, with their modes. Without a
// delegated cgroup the container runs without one, and warning says so
// when it asked for limits.
func containerCgroup(id string, l Limits, rules []devices.Rule) (cg *cgroup, warning string, err error) {
	if userns.Initial() {
		cg, err := newCgroup(id, l, rules)
		return cg, "", err
	}
	if !cgroupV2() {
		err = errors.New("cgroup v1 is not delegated to users")
	} else if err = delegated(); err == nil {
		if cg, err = newCgroupV2(id, l); err == nil {
			return cg, "", nil
		}
	}
	if l == (Limits{}) {
		return nil, "", nil
	}
	return nil, fmt.Sprintf("resource limits are not applied: %v (rootless limits need cgroup v2 and a delegated cgroup, as a systemd user session's: systemd-run --user --scope -p Delegate=yes devbox …)", err), nil
}

// delegated reports why the caller's v2 cgroup is not one it may manage,
// or nil: it, or an ancestor, carries systemd's mark of delegation (the
// user.delegate xattr, which users can read; trusted.delegate, which only
// the host's root can, is tried too). A cgroup merely writable by the
// user (a terminal's scope in its systemd session) is not: moving its
// processes into devbox-leaf would confuse the manager that owns it.
func delegated() error {
	own, err := parentCgroupV2()
	if err != nil {
		return err
	}
	fs, err := cgroup2FS()
	if err != nil {
		return err
	}
	buf := make([]byte, 8)
	for p := own; p != "/" && p != "." && p != ""; p = filepath.Dir(p) {
		for _, attr := range []string{"trusted.delegate", "user.delegate"} {
			if n, err := unix.Getxattr(filepath.Join(fs, p), attr, buf); err == nil && string(buf[:n]) == "1" {
				return nil
			}
		}
	}
	return fmt.Errorf("cgroup %s is not delegated to you", own)
}

func newCgroupV1(id string, l Limits, rules []devices.Rule) (*cgroup, error) {
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	cg := &cgroup{}
	type setting struct{ file, value string }
	want := map[string][]setting{}
	if l.MemoryBytes > 0 {
		v := strconv.FormatInt(l.MemoryBytes, 10)
		want["memory"] = []setting{{"memory.limit_in_bytes", v}, {"memory.memsw.limit_in_bytes", v}}
	}
	if l.Pids > 0 {
		want["pids"] = []setting{{"pids.max", strconv.FormatInt(l.Pids, 10)}}
	}
	if l.CPUs > 0 {
		want["cpu"] = []setting{{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", strconv.Itoa(int(l.CPUs * 100000))}}
	}
	want["devices"] = nil // the policy, below
	for ctrl, settings := range want {
		mnt, err := cgroupV1FS(ctrl)
		if err != nil {
			cg.remove()
			return nil, err
		}
		reclaimStale(filepath.Join(mnt, own[ctrl]))
		dir := filepath.Join(mnt, own[ctrl], cgroupName(id))
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			cg.remove()
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		// Recorded under /sys/fs/cgroup whatever mnt is, so that a later
		// `devbox down` finds it from its own mount namespace.
		cg.dirs = append(cg.dirs, v1Dir(ctrl, own[ctrl], id))
		if ctrl == "devices" {
			if err := devices.ApplyV1(dir, rules); err != nil {
				cg.remove()
				return nil, fmt.Errorf("device policy: %w", err)
			}
		}
		for _, s := range settings {
			p := filepath.Join(dir, s.file)
			if _, err := os.Stat(p); err != nil && s.file == "memory.memsw.limit_in_bytes" {
				continue // no swap accounting
			}
			if err := os.WriteFile(p, []byte(s.value), 0o644); err != nil {
				cg.remove()
				return nil, fmt.Errorf("cgroup %s=%s: %w", s.file, s.value, err)
			}
		}
	}
	return cg, nil
}

// leafName is the cgroup that the processes of devbox's own cgroup move to
// when that cgroup must give its controllers to containers (see
// enableControllers).
const leafName = "devbox-leaf"

// newCgroupV2 creates the container's cgroup under the caller's own cgroup
// (from /proc/self/cgroup), so that whatever limits the caller's session
// or service also holds for its containers, and nothing outside it, least
// of all the root's subtree_control, needs changing.
func newCgroupV2(id string, l Limits) (*cgroup, error) {
	fs, err := cgroup2FS()
	if err != nil {
		return nil, err
	}
	own, err := parentCgroupV2()
	if err != nil {
		return nil, err
	}
	base := filepath.Join(fs, own)
	reclaimStale(base)
	// Recorded under /sys/fs/cgroup whatever fs is, so that a later
	// `devbox down` finds it from its own mount namespace (resolveCgroup).
	canonical := filepath.Join(cgroupRoot, own, cgroupName(id))
	var settings [][2]string
	var need []string
	if l.MemoryBytes > 0 {
		need = append(need, "memory")
		settings = append(settings, [2]string{"memory.max", strconv.FormatInt(l.MemoryBytes, 10)}, [2]string{"memory.swap.max", "0"})
	}
	if l.Pids > 0 {
		need = append(need, "pids")
		settings = append(settings, [2]string{"pids.max", strconv.FormatInt(l.Pids, 10)})
	}
	if l.CPUs > 0 {
		need = append(need, "cpu")
		settings = append(settings, [2]string{"cpu.max", fmt.Sprintf("%d 100000", int(l.CPUs*100000))})
	}
	if err := enableControllers(base, need); err != nil {
		return nil, err
	}
	dir := filepath.Join(base, cgroupName(id))
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	cg := &cgroup{dirs: []string{canonical}}
	for _, s := range settings {
		err := os.WriteFile(filepath.Join(dir, s[0]), []byte(s[1]), 0o644)
		if err != nil && !(s[0] == "memory.swap.max" && errors.Is(err, os.ErrNotExist)) { // no swap accounting
			cg.remove()
			return nil, fmt.Errorf("cgroup %s=%s: %w", s[0], s[1], err)
		}
	}
	return cg, nil
}

// enableControllers makes the controllers in need available to children
// of base. A non-root cgroup that holds processes cannot (the "no internal
// processes" rule: EBUSY), and on a systemd host devbox's cgroup is such
// one: a login session's scope holds the shell. Like Docker-in-Docker,
// kind and crun, devbox then moves the processes of its cgroup into a leaf
// child, devbox-leaf, which stays (with the session's processes in it);
// they keep every limit of the cgroup above. A sibling tree beside the
// caller's cgroup would instead escape the caller's own limits and meddle
// in a parent that systemd owns.
func enableControllers(base string, need []string) error {
	avail, err := os.ReadFile(filepath.Join(base, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	var add []string
	for _, c := range need {
		if !slices.Contains(strings.Fields(string(avail)), c) {
			return fmt.Errorf("cgroup: the %s controller is not available in %s (it must be enabled in its parent's cgroup.subtree_control, or the cgroup delegated to this user)", c, base)
		}
		add = append(add, "+"+c)
	}
	if len(add) == 0 {
		return nil
	}
	ctl := filepath.Join(base, "cgroup.subtree_control")
	if on, err := os.ReadFile(ctl); err == nil && containsAll(strings.Fields(string(on)), need) {
		return nil
	}
	var err2 error
	for try := 0; try < 5; try++ {
		if err2 = os.WriteFile(ctl, []byte(strings.Join(add, " ")), 0o644); err2 == nil {
			return nil
		}
		if !errors.Is(err2, unix.EBUSY) {
			break
		}
		if err := moveToLeaf(base); err != nil {
			return err
		}
	}
	return fmt.Errorf("cgroup: enable %s in %s: %w", strings.Join(add, " "), base, err2)
}

// moveToLeaf moves every process of base into base/devbox-leaf.
func moveToLeaf(base string) error {
	leaf := filepath.Join(base, leafName)
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("cgroup: %w", err)
	}
	procs, err := os.ReadFile(filepath.Join(base, "cgroup.procs"))
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	for _, pid := range strings.Fields(string(procs)) {
		err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(pid), 0o644)
		if err != nil && !errors.Is(err, unix.ESRCH) { // exited meanwhile
			return fmt.Errorf("cgroup: move %s to %s: %w", pid, leaf, err)
		}
	}
	return nil
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// reclaimStale removes the empty cgroups of containers whose devbox was
// killed before it could (a SIGKILLed `devbox run`). A cgroup younger than
// a few seconds may be one another devbox has just made and not yet
// filled; one with processes or children cannot be removed (EBUSY).
func reclaimStale(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, "devbox-*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || filepath.Base(d) == leafName || time.Since(fi.ModTime()) < 2*time.Second {
			continue
		}
		os.Remove(d) // an empty directory only: rmdir of a cgroup in use is EBUSY
	}
}

// ownCgroupV2 is this process's cgroup on the unified hierarchy.
func ownCgroupV2() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("cgroup: no cgroup v2 entry in /proc/self/cgroup")
}

// ownCgroups maps each v1 controller to this process's cgroup path in it.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			out[ctrl] = parts[2]
		}
	}
	return out, sc.Err()
}

func (cg *cgroup) add(pid int) error {
	for _, d := range cg.dirs {
		if err := os.WriteFile(filepath.Join(resolveCgroup(d), "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("cgroup: add %d to %s: %w", pid, d, err)
		}
	}
	return nil
}

// remove deletes the cgroup directories. A cgroup whose last process has
// just exited can be busy for a moment, hence the retries.
func (cg *cgroup) remove() {
	for _, d := range cg.dirs {
		d = resolveCgroup(d)
		// The kernel releases a cgroup whose last task just exited a
		// little later: poll from 100 µs up, about half a second in all,
		// rather than make every container end pay a coarse sleep.
		for wait := 100 * time.Microsecond; ; wait *= 2 {
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) || wait > 256*time.Millisecond {
				break
			}
			time.Sleep(wait)
		}
	}
}

// WarmCgroupMoves makes the move of a container's init into its v1
// devices cgroup, soon after, cheap: the first move of a process
// between cgroups after a quiet spell waits out an RCU grace period for
// the kernel's cgroup threadgroup lock (12 ms here, a quarter of a
// `devbox run`), and the moves in the grace period after it do not. It
// moves devbox into the devices cgroup it is in already (nothing changes;
// an error is of no matter), in the background, while the caller reads
// the spec and the build; the init, forked later, is moved within that
// window. As root on v1 only: on v2 devbox may have moved itself into
// devbox-leaf, which this must not undo.
func WarmCgroupMoves() {
	if cgroupV2() || !userns.Initial() {
		return
	}
	go func() {
		own, err := ownCgroups()
		if err != nil || own["devices"] == "" {
			return
		}
		p := resolveCgroup(filepath.Join(cgroupRoot, "devices", own["devices"], "cgroup.procs"))
		f, err := os.OpenFile(p, os.O_WRONLY, 0) // never made where it is not
		if err != nil {
			return
		}
		defer f.Close()
		f.WriteString(strconv.Itoa(os.Getpid()))
	}()
}
