package runtime

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/internal/proc"
)

// TestReadOnlyMapping: only the binary's mappings without write access
// are released; its data, the heap and other files' are not.
func TestReadOnlyMapping(t *testing.T) {
	exe := unix.Stat_t{Ino: 1234, Dev: unix.Mkdev(0xfd, 1)}
	for line, want := range map[string]bool{
		"00400000-00a00000 r-xp 00000000 fd:01 1234 /usr/bin/devbox": true,
		"00a00000-00b00000 r--p 00600000 fd:01 1234 /":               true,
		"00b00000-00b10000 rw-p 00700000 fd:01 1234 /usr/bin/devbox": false,
		"00400000-00a00000 r-xp 00000000 fd:02 1234 /other/fs":       false,
		"00400000-00a00000 r-xp 00000000 fd:01 999 /usr/lib/x.so":    false,
		"c000000000-c000400000 rw-p 00000000 00:00 0":                false,
		"7ffd1000-7ffd3000 r--p 00000000 00:00 0 [vvar]":             false,
		"garbage": false,
		"00a00000-00900000 r--p 00600000 fd:01 1234 /backwards": false,
	} {
		if _, _, got := readOnlyMapping(line, exe); got != want {
			t.Errorf("%q: %v, want %v", line, got, want)
		}
	}
}

// TestIdleRelease: the first idle period releases, and then an idle one
// after the memory grew, at most once in releaseGap periods; a period
// that is not idle never does, and housekeeping that touches little
// memory does not bring releases back.
func TestIdleRelease(t *testing.T) {
	ms := time.Millisecond
	w := idleWatch{}
	for i, c := range []struct {
		used time.Duration
		rss  int
		want bool
	}{
		{ms, 20000, true},
		{ms, 6500, false}, {15 * ms, 6600, false}, // idle, nothing grew
		{300 * ms, 12000, false}, {ms, 12000, true}, // a busy spell, then idle
		{40 * ms, 9000, false}, {40 * ms, 9000, false}, {40 * ms, 9000, false}, // grew, too soon
		{40 * ms, 9000, true}, // light sessions grew it: under 2% counts as idle
		{ms, 6400, false},
	} {
		w.since++
		got := w.release(c.used, c.rss)
		if got != c.want {
			t.Errorf("period %d (%v used, %d KiB): release %v, want %v", i, c.used, c.rss, got, c.want)
		}
		if got {
			w.kept, w.since = 6000, 0
		}
	}
}

// TestReleaseMemory: the test binary's own code leaves its page tables
// and comes back when it runs.
func TestReleaseMemory(t *testing.T) {
	before := proc.StatusKiB(os.Getpid(), "RssFile")
	releaseMemory()
	if after := proc.StatusKiB(os.Getpid(), "RssFile"); after >= before {
		t.Errorf("RssFile %d KiB, then %d KiB", before, after)
	}
}
