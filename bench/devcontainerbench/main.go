// Command devcontainerbench brings one devcontainer.json up with the Dev
// Container CLI (from npm, against Debian's docker.io on a daemon of its
// own) and with devbox, in interleaved rounds: cold (neither has the base
// image or anything built: both pull it from a loopback registry, build
// the local feature and run the create commands), with the base present
// (only the base image stored), and warm (up again after the environment
// was stopped). The medians and their ratios are printed.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/devbox/devbox/internal/benchmark"

	"github.com/devbox/devbox/internal/testbase"
	"github.com/devbox/devbox/internal/testenv"
)

// config is the workspace: a Debian image, a local feature, create and
// start commands, as a typical devcontainer.json has.
var config = map[string]string{
	".devcontainer/devcontainer.json": `{
	"image": "${localEnv:BENCH_BASE}",
	"features": {"./tools": {"greeting": "hi"}},
	"containerEnv": {"APP_ENV": "dev"},
	"postCreateCommand": "echo created > /tmp/created",
	"postStartCommand": "date > /tmp/started"
}`,
	".devcontainer/tools/devcontainer-feature.json": `{"id": "tools", "version": "1.0.0", "options": {"greeting": {"type": "string", "default": "hello"}}}`,
	".devcontainer/tools/install.sh":                "#!/bin/sh\necho \"$GREETING\" > /usr/local/share/tools\n",
}

func main() {
	devbox := flag.String("devbox", "bin/devbox", "devbox binary (absolute)")
	cli := flag.String("cli", "", "the devcontainer CLI (default: @devcontainers/cli@0.88.0 from npm)")
	rounds := flag.Int("rounds", 3, "interleaved rounds (medians are reported)")
	showSteps := flag.Bool("steps", false, "print devbox's cold up, its steps with their times (to stderr)")
	flag.Parse()
	steps := io.Discard
	if *showSteps {
		steps = os.Stderr
	}
	if err := run(*devbox, *cli, *rounds, steps); err != nil {
		log.Fatal(err)
	}
}

func run(devbox, cli string, rounds int, steps io.Writer) error {
	if cli == "" {
		dir, err := os.MkdirTemp("", "devcontainerbench-cli-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if out, err := exec.Command("npm", "install", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error", "@devcontainers/cli@0.88.0").CombinedOutput(); err != nil {
			return fmt.Errorf("npm install @devcontainers/cli: %v\n%s", err, out)
		}
		cli = filepath.Join(dir, "node_modules", ".bin", "devcontainer")
	}
	ref, stop, err := testbase.ServeDebianBase(func(m string) { log.Print(m) })
	if err != nil {
		return err
	}
	defer stop()
	os.Setenv("BENCH_BASE", ref)
	dk, err := testenv.NewDockerBridged()
	if err != nil {
		return err
	}
	defer dk.Stop()
	sides := []benchmark.Side{
		{Name: "the Dev Container CLI 0.88 + Docker 20.10", Measure: func() ([]time.Duration, error) { return measureCLI(cli, ref, dk) }},
		{Name: "devbox", Measure: func() ([]time.Duration, error) { return measureDevbox(devbox, ref, steps) }},
	}
	figures := []string{"cold up", "base present", "warm up"}
	medians, err := benchmark.Interleave(sides, benchmark.Rounds{N: rounds, Logf: log.Printf}, figures)
	if err != nil {
		return err
	}
	fmt.Printf("medians of %d interleaved rounds; cold: nothing cached (the base is pulled from a loopback registry); base present: only the base image is stored; warm: up again after a stop\n", rounds)
	benchmark.Report(os.Stdout, sides, figures, medians)
	return nil
}

// workspace writes config into a new directory.
func workspace() (string, error) {
	ws, err := os.MkdirTemp("/var/tmp", "devcontainerbench-")
	if err != nil {
		return "", err
	}
	for rel, body := range config {
		p := filepath.Join(ws, "ws", rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			return "", err
		}
	}
	return filepath.Join(ws, "ws"), nil
}

// measureCLI times `devcontainer up` on a daemon emptied of containers,
// images and build cache; again with only the base image kept; and again
// after `docker stop`.
func measureCLI(cli, base string, dk *testenv.Docker) ([]time.Duration, error) {
	ws, err := workspace()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(filepath.Dir(ws))
	up := func() (time.Duration, error) {
		cmd := exec.Command(cli, "up", "--workspace-folder", ws, "--docker-path", testenv.CLI)
		cmd.Env = dk.Env()
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("devcontainer up: %v\n%s", err, out)
		}
		return time.Since(start), nil
	}
	var took []time.Duration
	for _, keep := range []bool{false, true} {
		if err := emptyDocker(dk, base, keep); err != nil {
			return nil, err
		}
		d, err := up()
		if err != nil {
			return nil, err
		}
		took = append(took, d)
	}
	ids, _ := dk.Run("ps", "-q", "--filter", "label=devcontainer.local_folder="+ws)
	if _, err := dk.Run(append([]string{"stop"}, strings.Fields(string(ids))...)...); err != nil {
		return nil, err
	}
	warm, err := up()
	return append(took, warm), err
}

// emptyDocker removes every container, image and build cache of dk, but
// the image base if keepBase.
func emptyDocker(dk *testenv.Docker, base string, keepBase bool) error {
	if ids, _ := dk.Run("ps", "-aq"); len(strings.Fields(string(ids))) > 0 {
		dk.Run(append([]string{"rm", "-f"}, strings.Fields(string(ids))...)...)
	}
	if _, err := dk.Run("builder", "prune", "-af"); err != nil {
		return err
	}
	if !keepBase {
		_, err := dk.Run("system", "prune", "-af")
		return err
	}
	out, _ := dk.Run("images", "--format", "{{.Repository}}:{{.Tag}}")
	for _, img := range strings.Fields(string(out)) {
		if img != base {
			dk.Run("rmi", "-f", img)
		}
	}
	return nil
}

// measureDevbox times `devbox up` on a new state root; on another whose
// store has the base image pulled already; and on that one again after
// `devbox down`.
func measureDevbox(devbox, base string, steps io.Writer) ([]time.Duration, error) {
	ws, err := workspace()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(filepath.Dir(ws))
	root := filepath.Join(filepath.Dir(ws), "root")
	do := func(args ...string) (time.Duration, error) {
		took, out, err := benchmark.Timed(ws, devbox, append([]string{"--root", root}, args...)...)
		fmt.Fprintf(steps, "--- devbox %v: %v\n%s", args, took.Round(time.Millisecond), out)
		return took, err
	}
	cold, err := do("up")
	if err != nil {
		return nil, err
	}
	do("rm", "ws")
	root = filepath.Join(filepath.Dir(ws), "root-with-base")
	defer do("rm", "ws")
	if _, err := do("image", "pull", base); err != nil {
		return nil, err
	}
	withBase, err := do("up")
	if err != nil {
		return nil, err
	}
	if _, err := do("down"); err != nil {
		return nil, err
	}
	warm, err := do("up")
	return []time.Duration{cold, withBase, warm}, err
}
