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
	var tDevbox, tCrane, tWarm []time.Duration
	devboxRun := func(i int) error {
		root := filepath.Join(work, fmt.Sprintf("devbox-%d", i))
		d, err := timeCmd(exec.Command(devbox, "--root", root, "image", "pull", ref))
		if err != nil {
			return err
		}
		tDevbox = append(tDevbox, d)
		w, err := timeCmd(exec.Command(devbox, "--root", root, "image", "pull", ref))
		if err != nil {
			return err
		}
		tWarm = append(tWarm, w)
		return nil
	}
	craneRun := func(i int) error {
		dst := filepath.Join(work, fmt.Sprintf("crane-%d", i))
		os.MkdirAll(dst, 0o755)
		c, err := timeCmd(exec.Command("bash", "-o", "pipefail", "-c", fmt.Sprintf("%s export %s - | tar -x -C %s", crane, ref, dst)))
		if err != nil {
			return err
		}
		tCrane = append(tCrane, c)
		return nil
	}
	// Nothing is deleted until the end: ext4 slows inode allocation down
	// for about 30 s after many deletions (recently_deleted() in perf
	// profiles), which would measure the file system, not the tools.
	for i := 0; i < runs; i++ {
		// Alternate who goes first.
		first, second := devboxRun, craneRun
		if i%2 == 1 {
			first, second = craneRun, devboxRun
		}
		if err := first(i); err != nil {
			return err
		}
		if err := second(i); err != nil {
			return err
		}
	}
	md, mc, mw := benchmark.Median(tDevbox), benchmark.Median(tCrane), benchmark.Median(tWarm)
	fmt.Printf("cold pull+unpack  devbox %v  crane export|tar -x %v  ratio %.2f (goal <= 0.70)\n", md.Round(time.Millisecond), mc.Round(time.Millisecond), float64(md)/float64(mc))
	fmt.Printf("warm pull         devbox %v (goal <= 50ms)\n", mw.Round(time.Millisecond))
	fmt.Printf("runs: devbox %v\n      crane  %v\n      warm   %v\n", tDevbox, tCrane, tWarm)
	return nil
}

// timeCmd times cmd after flushing dirty pages, so that the writeback of
// the previous run's files does not compete with this one.
func timeCmd(cmd *exec.Cmd) (time.Duration, error) {
	if err := exec.Command("sync").Run(); err != nil {
		return 0, err
	}
	cmd.Stderr = io.Discard
	start := time.Now()
	if out, err := cmd.Output(); err != nil {
		return 0, fmt.Errorf("%v: %w\n%s", cmd.Args, err, out)
	}
	return time.Since(start), nil
}
