// Command runbench times starting a container and running /bin/true on a
// cached environment: `devbox run` next to `runc run` of an OCI bundle
// over the same root file system and `bwrap --unshare-all` over it, in the
// same run.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
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
	devboxIn := func(dir string, args ...string) *exec.Cmd {
		cmd := exec.Command(devbox, append([]string{"--root", store.Root().Dir()}, args...)...)
		cmd.Dir = dir
		return cmd
	}
	// variant is a project directory of its own with spec, and the run
	// of /bin/true in it.
	variant := func(name, spec string) (string, func() *exec.Cmd, error) {
		dir := filepath.Join(work, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644); err != nil {
			return "", nil, err
		}
		return dir, func() *exec.Cmd { return devboxIn(dir, "run", "--", "/bin/true") }, nil
	}
	_, devboxCmd, err := variant("default", spec)
	if err != nil {
		return err
	}
	// The same without a user namespace: what the default costs.
	_, plainCmd, err := variant("plain", spec+"[security]\nuserns = false\n")
	if err != nil {
		return err
	}
	// The same with binds under the bind rule: the project (idmapped
	// for its owner) and a read-only host directory (mapped to nobody).
	_, bindsCmd, err := variant("binds", spec+"[[mounts]]\nsource = \".\"\ntarget = \"/project\"\n[[mounts]]\nsource = \"/usr/share/doc\"\ntarget = \"/doc\"\nreadonly = true\n")
	if err != nil {
		return err
	}
	// devbox exec: /bin/true in a running environment of the same base
	// (the init's SSH server on its socket, the command from its
	// seccomp'd thread), measured against bwrap's whole start.
	execDir, _, err := variant("exec", fmt.Sprintf("name = \"runbench-exec\"\n%s[ssh]\nport = %d\n", spec, freePort()))
	if err != nil {
		return err
	}
	if out, err := devboxIn(execDir, "up").CombinedOutput(); err != nil {
		return fmt.Errorf("devbox up: %v: %s", err, out)
	}
	defer devboxIn(execDir, "rm", "runbench-exec").Run()
	execCmd := func() *exec.Cmd { return devboxIn(execDir, "exec", "runbench-exec", "--", "/bin/true") }

	runcCmd, err := runcBundle(work, rootfs)
	if err != nil {
		return err
	}
	bwrapCmd := func() *exec.Cmd {
		return exec.Command("bwrap", "--unshare-all", "--ro-bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "/bin/true")
	}

	tools := []tool{{"devbox run", devboxCmd}, {"devbox run, userns=false", plainCmd}, {"devbox run, project + ro bind", bindsCmd}, {"runc run", runcCmd}, {"bwrap --unshare-all", bwrapCmd}, {"devbox exec (running env)", execCmd}}
	medians, err := measure(runs, quiet, tools)
	if err != nil {
		return err
	}
	fmt.Printf("devbox run / bwrap %.2f, devbox exec / bwrap %.2f, devbox run / runc %.2f\n",
		ratio(medians[0], medians[4]), ratio(medians[5], medians[4]), ratio(medians[0], medians[3]))
	return nil
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// freePort is a loopback TCP port nobody listens on now.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 2222
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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
func measure(runs int, quiet time.Duration, tools []tool) ([]time.Duration, error) {
	times := make([][]time.Duration, len(tools))
	for i := 0; i < runs+3; i++ {
		for j, tool := range tools { // interleaved, so drift hits all alike
			cmd := tool.cmd()
			time.Sleep(quiet)
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("%s: %v: %s", tool.name, err, out)
			}
			if i >= 3 { // warm-up
				times[j] = append(times[j], time.Since(start))
			}
		}
	}
	medians := make([]time.Duration, len(tools))
	for j, tool := range tools {
		medians[j] = benchmark.Median(times[j])
		fmt.Printf("%-30s median %8v  p90 %8v  devbox run/this %.2f\n", tool.name, medians[j].Round(10*time.Microsecond), benchmark.Percentile(times[j], 90).Round(10*time.Microsecond), ratio(medians[0], medians[j]))
	}
	return medians, nil
}

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
