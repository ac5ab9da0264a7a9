package benchmark

import (
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Median is the middle of ds (the upper one of an even count).
func Median(ds []time.Duration) time.Duration { return Percentile(ds, 50) }

// Percentile is the p-th percentile of ds, by rank.
func Percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)*p/100, len(s)-1)]
}

// Side is one tool measured: Measure gives one round's figures, in the
// order of Interleave's figures.
type Side struct {
	Name    string
	Measure func() ([]time.Duration, error)
}

// Rounds says how Interleave runs the sides.
type Rounds struct {
	// N rounds are measured, after Warmup rounds that are not.
	N, Warmup int
	// Quiet is a pause before each measurement, as between a user's
	// commands: back to back, a tool would find the kernel's caches and
	// locks still warm from the one before.
	Quiet time.Duration
	// Logf, if set, is told each measured round's figures.
	Logf func(string, ...any)
}

// Interleave runs every side once a round, so that what the machine does
// meanwhile falls on all alike, starting each round with the next side,
// so that none always goes first; it returns each side's median of each
// figure.
func Interleave(sides []Side, r Rounds, figures []string) ([][]time.Duration, error) {
	all := make([][][]time.Duration, len(sides))
	for round := range r.Warmup + r.N {
		for k := range sides {
			i := (round + k) % len(sides)
			time.Sleep(r.Quiet)
			got, err := sides[i].Measure()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sides[i].Name, err)
			}
			if len(got) != len(figures) {
				return nil, fmt.Errorf("%s: %d figures, want %d", sides[i].Name, len(got), len(figures))
			}
			if round < r.Warmup {
				continue
			}
			if r.Logf != nil {
				var line []string
				for j, d := range got {
					line = append(line, fmt.Sprintf("%s %v", figures[j], rounded(d)))
				}
				r.Logf("round %d, %s: %s", round-r.Warmup+1, sides[i].Name, strings.Join(line, ", "))
			}
			all[i] = append(all[i], got)
		}
	}
	medians := make([][]time.Duration, len(sides))
	for i := range sides {
		for j := range figures {
			var col []time.Duration
			for _, round := range all[i] {
				col = append(col, round[j])
			}
			medians[i] = append(medians[i], Median(col))
		}
	}
	return medians, nil
}

// Command is a Side's Measure that times one run of the command newCmd
// makes (a new one each time), as one figure; the command's output is in
// the error when it fails.
func Command(newCmd func() *exec.Cmd) func() ([]time.Duration, error) {
	return func() ([]time.Duration, error) {
		cmd := newCmd()
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
		}
		return []time.Duration{took}, nil
	}
}

// Report prints each side's medians with their ratio to the first side's
// (the peer), one line a side.
func Report(w io.Writer, sides []Side, figures []string, medians [][]time.Duration) {
	width := 0
	for _, s := range sides {
		width = max(width, len(s.Name)+1)
	}
	fmt.Fprintf(w, "ratios are to %s\n", sides[0].Name)
	for i, s := range sides {
		fmt.Fprintf(w, "%-*s", width, s.Name+":")
		for j, f := range figures {
			fmt.Fprintf(w, "   %s %8v (%.2fx)", f, rounded(medians[i][j]), float64(medians[i][j])/float64(medians[0][j]))
		}
		fmt.Fprintln(w)
	}
}

// rounded keeps a figure's meaningful digits: tenths of a millisecond
// under 100 ms (a container's start), milliseconds above.
func rounded(d time.Duration) time.Duration {
	if d < 100*time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// Timed runs name with args in dir and says how long it took, with its
// output; the output is in the error of a command that failed.
func Timed(dir, name string, args ...string) (time.Duration, []byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return took, out, fmt.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return took, out, nil
}
