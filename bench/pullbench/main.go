// Command pullbench times a cold pull + unpack of a debootstrapped Debian
// image from a loopback registry with devbox and with
// `crane export IMAGE - | tar -x`, in the same run, and a warm devbox pull.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/devbox/devbox/internal/benchmark"

	"github.com/devbox/devbox/internal/testbase"
)

func main() {
	devbox := flag.String("devbox", "bin/devbox", "devbox binary")
	crane := flag.String("crane", "crane", "crane binary")
	runs := flag.Int("runs", 5, "runs of each")
	work := flag.String("work", "/var/tmp/devbox-bench", "scratch directory")
	serve := flag.Bool("serve", false, "only serve the image and print its reference (for profiling by hand)")
	flag.Parse()
	if err := run(*devbox, *crane, *runs, *work, *serve); err != nil {
		log.Fatal(err)
	}
}

func run(devbox, crane string, runs int, work string, serve bool) error {
	store, img, err := testbase.DebianImage(func(m string) { log.Print(m) })
	if err != nil {
		return err
	}
	ref, out, srv, err := testbase.ServeDebian(store, img)
	if err != nil {
		return err
	}
	defer srv.Close()
	log.Printf("pushed the image to %s", ref)
	m, _ := out.Manifest()
	var size int64
	for _, l := range m.Layers {
		size += l.Size
	}
	log.Printf("image: %d layers, %.1f MB compressed", len(m.Layers), float64(size)/1e6)
	if serve {
		fmt.Println(ref)
		select {}
	}

	os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// Nothing is deleted until the end: ext4 slows inode allocation down
	// for about 30 s after many deletions (recently_deleted() in perf
	// profiles), which would measure the file system, not the tools.
	n := 0
	fresh := func(kind string) string {
		n++
		return filepath.Join(work, fmt.Sprintf("%s-%d", kind, n))
	}
	var roots []string // devbox's, for the warm pulls
	sides := []benchmark.Side{
		{Name: "crane export | tar -x", Measure: func() ([]time.Duration, error) {
			dst := fresh("crane")
			os.MkdirAll(dst, 0o755)
			return timeCmd(exec.Command("bash", "-o", "pipefail", "-c", fmt.Sprintf("%s export %s - | tar -x -C %s", crane, ref, dst)))
		}},
		{Name: "devbox image pull", Measure: func() ([]time.Duration, error) {
			roots = append(roots, fresh("devbox"))
			return timeCmd(exec.Command(devbox, "--root", roots[len(roots)-1], "image", "pull", ref))
		}},
	}
	figures := []string{"cold pull + unpack"}
	medians, err := benchmark.Interleave(sides, benchmark.Rounds{N: runs, Logf: log.Printf}, figures)
	if err != nil {
		return err
	}
	benchmark.Report(os.Stdout, sides, figures, medians)
	fmt.Println("goal: devbox <= 0.50x")
	var warm []time.Duration
	for _, root := range roots {
		w, err := timeCmd(exec.Command(devbox, "--root", root, "image", "pull", ref))
		if err != nil {
			return err
		}
		warm = append(warm, w[0])
	}
	fmt.Printf("warm pull (stored already): devbox %v (goal <= 50ms)\n", benchmark.Median(warm).Round(time.Millisecond))
	return nil
}

// timeCmd times cmd after flushing dirty pages, so that the writeback of
// the previous run's files does not compete with this one.
func timeCmd(cmd *exec.Cmd) ([]time.Duration, error) {
	if err := exec.Command("sync").Run(); err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	start := time.Now()
	if out, err := cmd.Output(); err != nil {
		return nil, fmt.Errorf("%v: %w\n%s", cmd.Args, err, out)
	}
	return []time.Duration{time.Since(start)}, nil
}
