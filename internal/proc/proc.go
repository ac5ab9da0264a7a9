// Package proc tells whether a process recorded earlier is still the same
// process. A PID alone is not enough: after its process ends the kernel
// hands it to another. The PID with the process's start time is unique
// while the system runs.
package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ID is a process's PID and start time.
type ID struct {
	Pid   int
	Start uint64
}

// Of identifies the live process pid; its Start is 0 if there is none.
func Of(pid int) ID { return ID{Pid: pid, Start: StartTime(pid)} }

// Self identifies the calling process.
func Self() ID { return Of(os.Getpid()) }

// Alive reports whether the process still runs (and is not a zombie).
func (id ID) Alive() bool { return id.Start != 0 && StartTime(id.Pid) == id.Start }

// String is the form Parse reads: "PID START".
func (id ID) String() string { return fmt.Sprintf("%d %d", id.Pid, id.Start) }

// Parse reads an ID written by String; what cannot be read is an ID of no
// process, never alive.
func Parse(s string) ID {
	var id ID
	if _, err := fmt.Sscanf(s, "%d %d", &id.Pid, &id.Start); err != nil {
		return ID{}
	}
	return id
}

// StartTime is a process's start time in clock ticks since boot, or 0 if
// it does not exist or is a zombie.
func StartTime(pid int) uint64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces and ')'
	if i < 0 {
		return 0
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 || fields[0] == "Z" || fields[0] == "X" {
		return 0
	}
	n, _ := strconv.ParseUint(fields[19], 10, 64)
	return n
}

// AnyIn reports whether a process of the host runs with a uid (real,
// effective, saved or file system) in [start, start+size): whether a
// range of user-namespace ids is still in use by some container.
func AnyIn(start, size uint32) bool {
	found := false
	if !eachUID(func(id uint32) bool {
		found = id >= start && uint64(id) < uint64(start)+uint64(size)
		return !found
	}) {
		return true // cannot tell: in use
	}
	return found
}

// UIDs are the uids (real, effective, saved, file system) that the host's
// processes run with, or nil if /proc cannot tell.
func UIDs() map[uint32]bool {
	ids := map[uint32]bool{}
	if !eachUID(func(id uint32) bool { ids[id] = true; return true }) {
		return nil
	}
	return ids
}

// eachUID calls f with the uids of every process until f returns false;
// it reports whether /proc could be read.
func eachUID(f func(uint32) bool) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue // gone meanwhile
		}
		_, rest, ok := strings.Cut(string(data), "\nUid:")
		if !ok {
			continue
		}
		line, _, _ := strings.Cut(rest, "\n")
		for _, field := range strings.Fields(line) {
			if id, err := strconv.ParseUint(field, 10, 32); err == nil && !f(uint32(id)) {
				return true
			}
		}
	}
	return true
}

// StatusKiB is a size field of /proc/PID/status (VmRSS, RssFile, …) in
// KiB, 0 if the process or the field is not there.
func StatusKiB(pid int, field string) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}
