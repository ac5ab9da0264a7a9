// Command runbench times starting a container and running /bin/true on a
// cached environment: `devbox run` (and `devbox exec` into a running
// environment of it) next to `runc run` of an OCI bundle over the same
// root file system and `bwrap --unshare-all` over it, in the same run.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/devbox/devbox/internal/benchmark"
	"github.com/devbox/devbox/internal/testenv"

	"github.com/devbox/devbox/internal/testbase"
)

func main() {
	devbox := flag.String("devbox", "bin/devbox", "devbox binary")
	runs := flag.Int("runs", 50, "runs of each")
	quiet := flag.Duration("quiet", 250*time.Millisecond, "pause before each start, as between a user's commands")
	flag.Parse()
	if err := run(*devbox, *runs, *quiet); err != nil {
		log.Fatal(err)
	}
}

func run(devbox string, runs int, quiet time.Duration) error {
	store, img, err := testbase.DebianImage(func(m string) { log.Print(m) })
	if err != nil {
		return err
	}
	rootfs := store.LayerDir(img.Layers[0])
	work, err := os.MkdirTemp("", "runbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	ours, stop, err := devboxSides(devbox, store.Root().Dir(), work)
	if err != nil {
		return err
	}
	defer stop()
	runcCmd, err := runcBundle(work, rootfs)
	if err != nil {
		return err
	}
	bwrapCmd := func() *exec.Cmd {
		return exec.Command("bwrap", "--unshare-all", "--ro-bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "/bin/true")
	}

	sides := append([]benchmark.Side{
		{Name: "bwrap --unshare-all", Measure: benchmark.Command(bwrapCmd)},
		{Name: "runc run", Measure: benchmark.Command(runcCmd)},
	}, ours...)
	// After a quiet pause: back to back, a start would find the kernel's
	// cgroup lock still fast from the one before (runc's moves made
	// devbox's cheap), which a user's command, seconds apart, does not.
	figures := []string{"/bin/true"}
	medians, err := benchmark.Interleave(sides, benchmark.Rounds{N: runs, Warmup: 3, Quiet: quiet}, figures)
	if err != nil {
		return err
	}
	benchmark.Report(os.Stdout, sides, figures, medians)
	fmt.Printf("devbox run / bwrap %.2f, devbox exec / bwrap %.2f, devbox run / runc %.2f\n",
		ratio(medians[2][0], medians[0][0]), ratio(medians[5][0], medians[0][0]), ratio(medians[2][0], medians[1][0]))
	return nil
}

// devboxSides are devbox's: run of a spec over the same base with no
// network (as the others), each variant in a project directory of its
// own, and exec into a running environment of it; stop removes that.
func devboxSides(devbox, root, work string) (sides []benchmark.Side, stop func(), err error) {
	spec := fmt.Sprintf("base = %q\n[network]\nmode = \"none\"\n", testbase.DebianRef)
	port, err := testenv.FreePort()
	if err != nil {
		return nil, nil, err
	}
	devboxIn := func(dir string, args ...string) func() *exec.Cmd {
		return func() *exec.Cmd {
			cmd := exec.Command(devbox, append([]string{"--root", root}, args...)...)
			cmd.Dir = dir
			return cmd
		}
	}
	for _, v := range []struct{ dir, name, spec string }{
		{"default", "devbox run", spec},
		// Without a user namespace: what the default costs.
		{"plain", "devbox run, userns=false", spec + "[security]\nuserns = false\n"},
		// With binds under the bind rule: the project (idmapped for its
		// owner) and a read-only host directory (mapped to nobody).
		{"binds", "devbox run, project + ro bind", spec + "[[mounts]]\nsource = \".\"\ntarget = \"/project\"\n[[mounts]]\nsource = \"/usr/share/doc\"\ntarget = \"/doc\"\nreadonly = true\n"},
		// exec: the init's SSH server on its socket, the command from
		// its seccomp'd thread.
		{"exec", "devbox exec (running env)", fmt.Sprintf("name = \"runbench-exec\"\n%s[ssh]\nport = %d\n", spec, port)},
	} {
		dir := filepath.Join(work, v.dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(v.spec), 0o644); err != nil {
			return nil, nil, err
		}
		run := devboxIn(dir, "run", "--", "/bin/true")
		if v.dir == "exec" {
			// A leftover of a killed bench goes first; a failed up is
			// removed too.
			stop = func() { devboxIn(dir, "rm", "runbench-exec")().Run() }
			stop()
			if out, err := devboxIn(dir, "up")().CombinedOutput(); err != nil {
				stop()
				return nil, nil, fmt.Errorf("devbox up: %v: %s", err, out)
			}
			run = devboxIn(dir, "exec", "runbench-exec", "--", "/bin/true")
		}
		sides = append(sides, benchmark.Side{Name: v.name, Measure: benchmark.Command(run)})
	}
	return sides, stop, nil
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// runcBundle makes an OCI bundle over rootfs with `runc spec`'s default
// (its own namespaces, a read-only root) running /bin/true, and returns
// its run.
func runcBundle(work, rootfs string) (func() *exec.Cmd, error) {
	bundle := filepath.Join(work, "bundle")
	os.MkdirAll(bundle, 0o755)
	if out, err := exec.Command("runc", "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("runc spec: %v: %s", err, out)
	}
	cfg, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	for _, r := range [][2]string{{`"terminal": true`, `"terminal": false`}, {`"sh"`, `"/bin/true"`}, {`"path": "rootfs"`, fmt.Sprintf("%q: %q", "path", rootfs)}} {
		cfg = bytes.Replace(cfg, []byte(r[0]), []byte(r[1]), 1)
	}
	os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o644)
	n := 0
	return func() *exec.Cmd {
		n++
		return exec.Command("runc", "--root", filepath.Join(work, "runc-state"), "run", "--bundle", bundle, fmt.Sprintf("bench%d", n))
	}, nil
}
