package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/devbox/devbox/internal/proc"
)

// idleMemory ups both sides, waits past the inits' idle period, and
// prints the memory of what supervises each service: devbox's service
// inits, Docker's containerd-shims (VmRSS and PSS, KiB).
func idleMemory(d *dockerSide, b *devboxSide) error {
	if _, err := d.compose("up", "-d"); err != nil {
		return err
	}
	if _, _, err := b.do("up", "-f", "devcontainer.json"); err != nil {
		return err
	}
	time.Sleep(12 * time.Second)
	_, out, err := b.do("ps", "--json")
	if err != nil {
		return err
	}
	var envs []struct {
		Name     string
		Services []struct {
			Name string
			Pid  int
		}
	}
	json.Unmarshal(out, &envs)
	for _, e := range envs {
		for _, s := range e.Services {
			fmt.Printf("devbox supervisor (init of %s): VmRSS %d KiB, PSS %d KiB\n", s.Name, proc.StatusKiB(s.Pid, "VmRSS"), pss(s.Pid))
		}
	}
	shims, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, c := range shims {
		comm, _ := os.ReadFile(c)
		if strings.HasPrefix(string(comm), "containerd-shim") {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(c)))
			fmt.Printf("Docker containerd-shim (pid %d): VmRSS %d KiB, PSS %d KiB\n", pid, proc.StatusKiB(pid, "VmRSS"), pss(pid))
		}
	}
	d.compose("stop")
	b.do("down", "ws")
	return nil
}

// pss is a process's proportional set size, KiB.
func pss(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}
