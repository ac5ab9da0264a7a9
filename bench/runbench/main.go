// Command runbench times starting a container and running /bin/true on a
// cached environment: `devbox run` next to `runc run` of an OCI bundle
// over the same root file system and `bwrap --unshare-all` over it, in the
// same run.
package main

import (
	"flag"
	"fmt"
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

	// devbox: a spec over the same base, no network (like the others),
	// in a project directory of its own per variant.
	spec := fmt.Sprintf("base = %q\n[network]\nmode = \"none\"\n", testbase.DebianRef)
	variant := func(name, spec string) (func() *exec.Cmd, error) {
		dir := filepath.Join(work, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644); err != nil {
			return nil, err
		}
		return func() *exec.Cmd {
			cmd := exec.Command(devbox, "--root", store.Root().Dir(), "run", "--", "/bin/true")
			cmd.Dir = dir
			return cmd
		}, nil
	}
	devboxCmd, err := variant("default", spec)
	if err != nil {
		return err
	}
	// The same without a user namespace: what the default costs.
	plainCmd, err := variant("plain", spec+"[security]\nuserns = false\n")
	if err != nil {
		return err
	}
	// The same with binds under the bind rule: the project (idmapped
	// for its owner) and a read-only host directory (mapped to nobody).
	bindsCmd, err := variant("binds", spec+"[[mounts]]\nsource = \".\"\ntarget = \"/project\"\n[[mounts]]\nsource = \"/usr/share/doc\"\ntarget = \"/doc\"\nreadonly = true\n")
	if err != nil {
		return err
	}

	// runc: `runc spec`'s default (its own namespaces, read-only root).
	bundle := filepath.Join(work, "bundle")
	os.MkdirAll(bundle, 0o755)
	if out, err := exec.Command("runc", "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		return fmt.Errorf("runc spec: %v: %s", err, out)
	}
	cfg, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	cfg = replace(cfg, `"terminal": true`, `"terminal": false`)
	cfg = replace(cfg, `"sh"`, `"/bin/true"`)
	cfg = replace(cfg, `"path": "rootfs"`, fmt.Sprintf("%q: %q", "path", rootfs))
	os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o644)
	n := 0
	runcCmd := func() *exec.Cmd {
		n++
		return exec.Command("runc", "--root", filepath.Join(work, "runc-state"), "run", "--bundle", bundle, fmt.Sprintf("bench%d", n))
	}
	bwrapCmd := func() *exec.Cmd {
		return exec.Command("bwrap", "--unshare-all", "--ro-bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "/bin/true")
	}

	return measure(runs, quiet, []tool{{"devbox run", devboxCmd}, {"devbox run, userns=false", plainCmd}, {"devbox run, project + ro bind", bindsCmd}, {"runc run", runcCmd}, {"bwrap --unshare-all", bwrapCmd}})
}

// tool is one way to start a container and run /bin/true.
type tool struct {
	name string
	cmd  func() *exec.Cmd
}

// measure runs each tool runs times, interleaved after a warm-up, and
// prints each one's median and p90 and the first's ratio to it. Each
// start follows a quiet pause: back to back, a start would find the
// kernel's cgroup lock still fast from the one before (runc's moves
// made devbox's cheap), which a user's command, seconds apart, does not.
func measure(runs int, quiet time.Duration, tools []tool) error {
	times := make([][]time.Duration, len(tools))
	for i := 0; i < runs+3; i++ {
		for j, tool := range tools { // interleaved, so drift hits all alike
			cmd := tool.cmd()
			time.Sleep(quiet)
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %v: %s", tool.name, err, out)
			}
			if i >= 3 { // warm-up
				times[j] = append(times[j], time.Since(start))
			}
		}
	}
	d := benchmark.Median(times[0])
	for j, tool := range tools {
		m := benchmark.Median(times[j])
		fmt.Printf("%-26s median %8v  p90 %8v  devbox/this %.2f\n", tool.name, m.Round(10*time.Microsecond), benchmark.Percentile(times[j], 90).Round(10*time.Microsecond), float64(d)/float64(m))
	}
	return nil
}

func replace(b []byte, old, new string) []byte {
	s := string(b)
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return []byte(s[:i] + new + s[i+len(old):])
		}
	}
	return b
}
