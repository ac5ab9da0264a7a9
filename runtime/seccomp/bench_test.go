package seccomp

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// onConfinedThread runs f on a fresh thread that has filter installed (nil:
// none) and that dies afterwards: the goroutine exits locked.
func onConfinedThread(b *testing.B, filter []unix.SockFilter, f func()) {
	b.Helper()
	if os.Geteuid() != 0 && filter != nil {
		b.Skip("needs CAP_SYS_ADMIN")
	}
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		if filter != nil {
			if err := Install(filter); err != nil {
				done <- err
				return
			}
		}
		f()
		done <- nil
	}()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// linearFilter is the naive program, for comparison: the arch check, then one
// JEQ per allowed syscall in the profile's (alphabetical) order.
func linearFilter(b *testing.B) []unix.SockFilter {
	byName := map[string]uint32{}
	for _, s := range sysnums {
		byName[s.name] = s.nr
	}
	prog := []unix.SockFilter{
		ldAbs(offArch), jump(unix.BPF_JEQ|unix.BPF_K, nativeArch.auditArch, 1, 0), ret(retKillProcess), ldAbs(offNr),
	}
	for _, n := range append(append([]string{}, dockerAllow...), dockerAllowWithDefaultCaps...) {
		if nr, ok := byName[n]; ok {
			prog = append(prog, jump(unix.BPF_JEQ|unix.BPF_K, nr, 0, 1), ret(retAllow))
		}
	}
	return append(prog, ret(retEPERM))
}

// filterCase is a filter under a benchmark's name for it (nil: none).
type filterCase struct {
	name   string
	filter []unix.SockFilter
}

// filters are the named cases of which: "unconfined", "tree" (Default)
// and "linear" (linearFilter).
func filters(b *testing.B, which ...string) []filterCase {
	tree, err := Default()
	if err != nil {
		b.Skip(err)
	}
	var out []filterCase
	for _, w := range which {
		c := filterCase{name: w}
		switch w {
		case "tree":
			c.filter = tree
		case "linear":
			c.filter = linearFilter(b)
		}
		out = append(out, c)
	}
	return out
}

// benchConfined runs call in b.Loop on a thread confined by each case,
// until it fails (reported from here: the thread is not the test's, where
// b.Fatal may not be called).
func benchConfined(b *testing.B, cases []filterCase, call func() error) {
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			onConfinedThread(b, c.filter, func() {
				for b.Loop() {
					if err := call(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkGetpid(b *testing.B) {
	benchConfined(b, filters(b, "unconfined", "tree", "linear"), func() error {
		unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
		return nil
	})
}

// BenchmarkRefused is a syscall the filter refuses (add_key → EPERM). The
// kernel caches "always allowed" numbers in a bitmap when the filter is
// installed (Linux ≥ 5.11), so getpid above never runs the program; a refused
// or argument-checked syscall does, and this is where the search tree counts.
func BenchmarkRefused(b *testing.B) {
	benchConfined(b, filters(b, "tree", "linear"), func() error {
		if _, _, e := unix.RawSyscall(unix.SYS_ADD_KEY, 0, 0, 0); e != unix.EPERM {
			return fmt.Errorf("add_key: %v, want EPERM", e)
		}
		return nil
	})
}

// BenchmarkPersonality is an argument-checked syscall (never cached).
func BenchmarkPersonality(b *testing.B) {
	benchConfined(b, filters(b, "unconfined", "tree"), func() error {
		unix.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
		return nil
	})
}

// BenchmarkThread is the cost of a fresh locked thread, with and without
// installing the filter on it: the difference is what Install costs.
func BenchmarkThread(b *testing.B) {
	for _, c := range filters(b, "unconfined", "tree") {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				onConfinedThread(b, c.filter, func() {})
			}
		})
	}
}

// BenchmarkExecTrue is fork+exec+wait of /bin/true from a confined thread:
// every syscall of the child (dynamic loader included) goes through the filter.
func BenchmarkExecTrue(b *testing.B) {
	benchConfined(b, filters(b, "unconfined", "tree"), func() error {
		return exec.Command("/bin/true").Run()
	})
}
