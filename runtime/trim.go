package runtime

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// idleWatch releases the init's memory (releaseMemory) once it has been
// idle for a whole period (it used next to no CPU), and again whenever
// it is idle after its resident memory grew: a serving init spends most
// of its life waiting for a login, and each login faults some of its
// code back in, with little CPU.
type idleWatch struct {
	ticker *time.Ticker
	last   time.Duration // CPU time at the last tick
	// kept is the resident memory (KiB) right after the last release;
	// zero before the first.
	kept int
	// since counts the periods since the last release.
	since int
}

// idlePeriod is how often the watch looks. A period in which the init
// used at most idleCPU (2% of it) is idle: the Go runtime's own
// housekeeping takes about 1 ms of a period on a host, but 10-20 ms
// under emulation (the cgroup-v2 VM, where a 20 ms bound missed every
// release). Memory is released again once it grew by regrowth, and no
// sooner than releaseGap periods after the last release: a light session
// that faults the code back in after each one must not pay a release
// every other period.
const (
	idlePeriod = 5 * time.Second
	idleCPU    = idlePeriod / 50
	regrowth   = 1 << 10 // KiB
	releaseGap = 4
)

func newIdleWatch() *idleWatch {
	return &idleWatch{ticker: time.NewTicker(idlePeriod), last: cpuTime()}
}

func (w *idleWatch) tick() <-chan time.Time { return w.ticker.C }
func (w *idleWatch) stop()                  { w.ticker.Stop() }

// check releases memory if the period that just ended calls for it.
func (w *idleWatch) check() {
	now := cpuTime()
	w.since++
	if w.release(now-w.last, residentKiB()) {
		releaseMemory()
		w.kept = max(residentKiB(), 1) // unknown: released once, not at every tick
		w.since = 0
		now = cpuTime() // the release's own work is not activity
	}
	w.last = now
}

// release says whether a period in which the init used the CPU time
// used, ending with rss KiB resident, ends with a release: an idle one
// does, the first time, and after the memory grew if the last release
// is releaseGap periods old.
func (w *idleWatch) release(used time.Duration, rss int) bool {
	if used > idleCPU {
		return false
	}
	return w.kept == 0 || rss > w.kept+regrowth && w.since >= releaseGap
}

// residentKiB is the init's resident memory, or 0 if unknown.
func residentKiB() int {
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(statm))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.Atoi(f[1])
	return pages * os.Getpagesize() >> 10
}

// cpuTime is the CPU time the init's threads used so far.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// releaseMemory gives back what a serving init keeps resident for
// nothing once it is idle: the heap its set-up freed (returned to the
// kernel), and the pages of its own binary's code and read-only data that
// start-up touched once (every package's init runs, needed or not). Those
// are dropped from its page tables only: they stay in the page cache,
// shared with every devbox process, and fault back in from the file when
// they run again. A mapping with private copies in it (Anonymous in
// smaps: a PIE binary's relocated RELRO pages, which the loader wrote and
// then made read-only) is left alone, since dropping those would lose
// what was written; so is every writable one.
func releaseMemory() {
	debug.FreeOSMemory()
	var exe unix.Stat_t
	if unix.Stat("/proc/self/exe", &exe) != nil {
		return
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return
	}
	var start, end uintptr
	var candidate bool
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "Anonymous:"); ok {
			if candidate && strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")) == "0" {
				unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_DONTNEED)
			}
			candidate = false
			continue
		}
		if s, e, ok := readOnlyMapping(line, exe); ok {
			start, end, candidate = s, e, true
		}
	}
}

// readOnlyMapping is a mapping's line of /proc/self/maps (or the first
// of its entry in smaps) that maps the file exe without write access: its
// range.
func readOnlyMapping(line string, exe unix.Stat_t) (start, end uintptr, ok bool) {
	f := strings.Fields(line) // range perms offset dev inode [path]
	if len(f) < 5 || len(f[1]) < 2 || f[1][1] == 'w' {
		return 0, 0, false
	}
	if ino, err := strconv.ParseUint(f[4], 10, 64); err != nil || ino != exe.Ino {
		return 0, 0, false
	}
	if f[3] != fmt.Sprintf("%02x:%02x", unix.Major(exe.Dev), unix.Minor(exe.Dev)) {
		return 0, 0, false
	}
	lo, hi, _ := strings.Cut(f[0], "-")
	s, err1 := strconv.ParseUint(lo, 16, 64)
	e, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return 0, 0, false
	}
	return uintptr(s), uintptr(e), true
}
