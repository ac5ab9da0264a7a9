// Command devcontainerbench brings one devcontainer.json up with the Dev
// Container CLI (from npm, against Debian's docker.io on a daemon of its
// own) and with devbox, in interleaved rounds: cold (neither has the base
// image or anything built: both pull it from a loopback registry, build
// the local feature and run the create commands) and warm (up again after
// the environment was stopped). The medians and their ratios are printed.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

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
	cache, img, err := testbase.DebianImage(func(m string) { log.Print(m) })
	if err != nil {
		return err
	}
	ref, _, srv, err := testbase.ServeDebian(cache, img)
	if err != nil {
		return err
	}
	defer srv.Close()
	os.Setenv("BENCH_BASE", ref)
	dk, err := testenv.NewDockerBridged()
	if err != nil {
		return err
	}
	defer dk.Stop()
	sides := []struct {
		name    string
		measure func() (cold, warm time.Duration, err error)
	}{
		{"Dev Container CLI 0.88 + Docker 20.10", func() (time.Duration, time.Duration, error) { return measureCLI(cli, dk) }},
		{"devbox", func() (time.Duration, time.Duration, error) { return measureDevbox(devbox, steps) }},
	}
	colds, warms := make([][]time.Duration, len(sides)), make([][]time.Duration, len(sides))
	for r := range rounds {
		for i, side := range sides {
			cold, warm, err := side.measure()
			if err != nil {
				return fmt.Errorf("%s: %w", side.name, err)
			}
			log.Printf("round %d, %s: cold %v, warm %v", r+1, side.name, cold.Round(time.Millisecond), warm.Round(time.Millisecond))
			colds[i], warms[i] = append(colds[i], cold), append(warms[i], warm)
		}
	}
	peerCold, peerWarm := median(colds[0]), median(warms[0])
	fmt.Printf("medians of %d interleaved rounds; cold: nothing cached (the base is pulled from a loopback registry); warm: up again after a stop\n", rounds)
	for i, side := range sides {
		c, w := median(colds[i]), median(warms[i])
		fmt.Printf("%-40s cold up %8v (%.2fx the CLI)   warm up %8v (%.2fx the CLI)\n", side.name+":",
			c.Round(time.Millisecond), float64(c)/float64(peerCold), w.Round(time.Millisecond), float64(w)/float64(peerWarm))
	}
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

// measureCLI times `devcontainer up` on a daemon emptied of containers
// and images, then again after `docker stop`.
func measureCLI(cli string, dk *testenv.Docker) (cold, warm time.Duration, err error) {
	if ids, _ := dk.Run("ps", "-aq"); len(strings.Fields(string(ids))) > 0 {
		dk.Run(append([]string{"rm", "-f"}, strings.Fields(string(ids))...)...)
	}
	if _, err := dk.Run("system", "prune", "-af"); err != nil {
		return 0, 0, err
	}
	ws, err := workspace()
	if err != nil {
		return 0, 0, err
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
	if cold, err = up(); err != nil {
		return 0, 0, err
	}
	ids, _ := dk.Run("ps", "-q", "--filter", "label=devcontainer.local_folder="+ws)
	if _, err := dk.Run(append([]string{"stop"}, strings.Fields(string(ids))...)...); err != nil {
		return 0, 0, err
	}
	warm, err = up()
	return cold, warm, err
}

// measureDevbox times `devbox up` on a new state root, then again after
// `devbox down`.
func measureDevbox(devbox string, steps io.Writer) (cold, warm time.Duration, err error) {
	ws, err := workspace()
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(filepath.Dir(ws))
	root := filepath.Join(filepath.Dir(ws), "root")
	do := func(args ...string) (time.Duration, error) {
		cmd := exec.Command(devbox, append([]string{"--root", root}, args...)...)
		cmd.Dir = ws
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("devbox %v: %v\n%s", args, err, out)
		}
		took := time.Since(start)
		fmt.Fprintf(steps, "--- devbox %v: %v\n%s", args, took.Round(time.Millisecond), out)
		return took, nil
	}
	defer do("rm", "ws")
	if cold, err = do("up"); err != nil {
		return 0, 0, err
	}
	if _, err := do("down"); err != nil {
		return 0, 0, err
	}
	warm, err = do("up")
	return cold, warm, err
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
