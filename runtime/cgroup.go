package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
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
func newCgroup(id string, l Limits) (*cgroup, error) {
	if l.CPUs == 0 && l.MemoryBytes == 0 && l.Pids == 0 {
		return nil, nil
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		return newCgroupV2(id, l)
	}
	return newCgroupV1(id, l)
}

func newCgroupV1(id string, l Limits) (*cgroup, error) {
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
	for ctrl, settings := range want {
		mnt := filepath.Join(cgroupRoot, ctrl)
		if _, err := os.Stat(mnt); err != nil {
			cg.remove()
			return nil, fmt.Errorf("cgroup controller %s is not mounted", ctrl)
		}
		dir := filepath.Join(mnt, own[ctrl], "devbox-"+id)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			cg.remove()
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		cg.dirs = append(cg.dirs, dir)
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

func newCgroupV2(id string, l Limits) (*cgroup, error) {
	parent := filepath.Join(cgroupRoot, "devbox")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	// Controllers must be enabled on the way down; the root and devbox's
	// own directory hold no processes, so this is allowed.
	for _, d := range []string{cgroupRoot, parent} {
		if err := os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0o644); err != nil {
			return nil, fmt.Errorf("cgroup: enable controllers in %s: %w", d, err)
		}
	}
	dir := filepath.Join(parent, id)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	cg := &cgroup{dirs: []string{dir}}
	var settings [][2]string
	if l.MemoryBytes > 0 {
		settings = append(settings, [2]string{"memory.max", strconv.FormatInt(l.MemoryBytes, 10)}, [2]string{"memory.swap.max", "0"})
	}
	if l.Pids > 0 {
		settings = append(settings, [2]string{"pids.max", strconv.FormatInt(l.Pids, 10)})
	}
	if l.CPUs > 0 {
		settings = append(settings, [2]string{"cpu.max", fmt.Sprintf("%d 100000", int(l.CPUs*100000))})
	}
	for _, s := range settings {
		if err := os.WriteFile(filepath.Join(dir, s[0]), []byte(s[1]), 0o644); err != nil && s[0] != "memory.swap.max" {
			cg.remove()
			return nil, fmt.Errorf("cgroup %s=%s: %w", s[0], s[1], err)
		}
	}
	return cg, nil
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
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("cgroup: add %d to %s: %w", pid, d, err)
		}
	}
	return nil
}

// remove deletes the cgroup directories. A cgroup whose last process has
// just exited can be busy for a moment, hence the retries.
func (cg *cgroup) remove() {
	for _, d := range cg.dirs {
		for i := 0; i < 50; i++ {
			if err := os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
