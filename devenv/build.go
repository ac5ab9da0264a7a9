package devenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/devbox/devbox/rootfs"
	"github.com/devbox/devbox/runtime"
)

// BuildOptions tune a build.
type BuildOptions struct {
	// NoCache rebuilds every step.
	NoCache bool
	Pull    rootfs.PullOptions
	// Out gets a header per step; Stdout and Stderr the output of the
	// steps' commands.
	Out            io.Writer
	Stdout, Stderr *os.File
	Log            func(string)
}

// Built is a built environment: its layers, top first, over its image.
type Built struct {
	Lower []string
	Image *rootfs.Image
	Plan  *Plan
	// NodeVersion is the exact Node.js version installed, if any.
	NodeVersion string
}

// buildRecord is what builds/<key>.json keeps of a step.
type buildRecord struct {
	Key     string        `json:"key"`
	Kind    StepKind      `json:"kind"`
	Summary string        `json:"summary"`
	Built   time.Time     `json:"built"`
	Took    time.Duration `json:"took"`
	Node    string        `json:"node,omitempty"`
	// BaseLayers are the image layers the step was built on, which prune
	// must keep while the step exists.
	BaseLayers []string `json:"base_layers"`
}

// Build executes the spec's plan: each step not yet built runs (in a
// build container, or on the host for downloads) over the layers below it,
// and what it changed becomes the step's layer, committed under its cache
// key. A failing step commits nothing and leaves earlier steps cached.
func Build(ctx context.Context, store *rootfs.Store, s *Spec, o BuildOptions) (*Built, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = func(string) {}
	}
	leave, err := store.Enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	start := time.Now()
	img, err := store.Resolve(ctx, s.BaseRef, o.Pull)
	if err != nil {
		return nil, err
	}
	plan := NewPlan(s, img.Digest)
	n := len(plan.Steps)
	fmt.Fprintf(o.Out, "[1/%d] %s … %s\n", n, plan.Steps[0].Summary, shortDur(time.Since(start)))
	b := &Built{Lower: store.LowerDirs(img), Image: img, Plan: plan}
	for i, st := range plan.Steps[1:] {
		header := fmt.Sprintf("[%d/%d] %s", i+2, n, st.Summary)
		if store.HasBuild(st.Key) && !o.NoCache {
			var rec buildRecord
			readRecord(store.BuildDir(st.Key)+".json", &rec)
			if rec.Node != "" {
				b.NodeVersion = rec.Node
			}
			fmt.Fprintf(o.Out, "%s … cached\n", header)
			b.Lower = append([]string{store.BuildDir(st.Key)}, b.Lower...)
			continue
		}
		fmt.Fprintf(o.Out, "%s …\n", header)
		t0 := time.Now()
		rec, err := runStep(ctx, store, s, b, st, o)
		if err != nil {
			return nil, fmt.Errorf("step [%d/%d] %s: %w", i+2, n, st.Kind, err)
		}
		rec.Took = time.Since(t0)
		fmt.Fprintf(o.Out, "%s … %s\n", header, shortDur(rec.Took))
		b.Lower = append([]string{store.BuildDir(st.Key)}, b.Lower...)
	}
	return b, nil
}

func shortDur(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// runStep makes one step's layer in tmp/ and commits it.
func runStep(ctx context.Context, store *rootfs.Store, s *Spec, b *Built, st Step, o BuildOptions) (*buildRecord, error) {
	tmp, err := store.TempDir("build-" + st.Key[:12] + "-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	upper := filepath.Join(tmp, "upper")
	if err := os.Mkdir(upper, 0o755); err != nil {
		return nil, err
	}
	rec := &buildRecord{Key: st.Key, Kind: st.Kind, Summary: st.Summary, Built: time.Now().UTC(), BaseLayers: b.Image.Layers}
	switch st.Kind {
	case StepPackages:
		err = packagesStep(ctx, s, b, tmp, o)
	case StepNode:
		musl := existsInLayers(b.Lower, "lib/ld-musl-x86_64.so.1") || existsInLayers(b.Lower, "lib/ld-musl-aarch64.so.1")
		rec.Node, err = installNode(ctx, newDownloads(store.Root(), o.Log), s, musl, upper)
		b.NodeVersion = rec.Node
		if err == nil && s.Node.Version != rec.Node {
			o.Log(fmt.Sprintf("node %s resolved to %s", s.Node.Version, rec.Node))
		}
	case StepNPM:
		err = writeFile(filepath.Join(upper, "usr/local/etc/npmrc"), s.npmrc())
	case StepUser:
		err = userStep(ctx, s, b, tmp, o)
	case StepConfig:
		err = configStep(s, upper)
	case StepRun:
		err = runInBuild(ctx, s, b, tmp, []string{"/bin/sh", "-c", st.Command}, nil, o)
	default:
		err = fmt.Errorf("unknown step kind %q", st.Kind)
	}
	if err != nil {
		return nil, err
	}
	if err := store.CommitBuild(st.Key, upper, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

func writeFile(p, content string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

func packagesStep(ctx context.Context, s *Spec, b *Built, tmp string, o BuildOptions) error {
	manager := s.Packages.Manager
	if manager == "auto" {
		var err error
		if manager, err = detectManager(b.Lower); err != nil {
			return err
		}
	}
	names, notes := translatePackages(manager, s.Packages.Install)
	for _, n := range notes {
		o.Log("  " + n)
	}
	vault := s.Packages.CentOSVault == nil || *s.Packages.CentOSVault
	return runInBuild(ctx, s, b, tmp, []string{"/bin/sh", "-c", packageScript(manager, names, vault)}, nil, o)
}

// userScript makes the SSH user (with a home and login shell) and sets
// its password hash in /etc/shadow, so that su and sudo agree with SSH.
const userScript = `set -e
if [ "$DEVBOX_USER" != root ] && ! id "$DEVBOX_USER" >/dev/null 2>&1; then
  if command -v useradd >/dev/null 2>&1; then useradd -m -s "$DEVBOX_SHELL" "$DEVBOX_USER"
  else adduser -D -s "$DEVBOX_SHELL" "$DEVBOX_USER"; fi
fi
if [ -n "$DEVBOX_HASH" ]; then echo "$DEVBOX_USER:$DEVBOX_HASH" | chpasswd -e; fi`

func userStep(ctx context.Context, s *Spec, b *Built, tmp string, o BuildOptions) error {
	hash := s.SSH.PasswordHash
	if pw := s.Password(); hash == "" && pw != "" {
		var err error
		if hash, err = HashPassword(pw); err != nil {
			return err
		}
	}
	if s.SSH.User == "root" && hash == "" {
		return nil // nothing to change: an empty layer
	}
	shell := s.Shell
	if shell == "" {
		shell = "/bin/sh"
		if existsInLayers(b.Lower, "bin/bash") || existsInLayers(b.Lower, "usr/bin/bash") {
			shell = "/bin/bash"
		}
	}
	env := []string{"DEVBOX_USER=" + s.SSH.User, "DEVBOX_SHELL=" + shell, "DEVBOX_HASH=" + hash}
	return runInBuild(ctx, s, b, tmp, []string{"/bin/sh", "-c", userScript}, env, o)
}

// configStep makes the working directory and puts the spec's [env] in
// /etc/profile.d for login shells (the server gives it to every session).
func configStep(s *Spec, upper string) error {
	if s.Workdir != "" {
		if err := os.MkdirAll(filepath.Join(upper, s.Workdir), 0o755); err != nil {
			return err
		}
	}
	if len(s.Env) == 0 {
		return nil
	}
	var sb strings.Builder
	sb.WriteString("# written by devbox from the spec's [env]\n")
	for _, k := range sortedKeys(s.Env) {
		sb.WriteString("export " + k + "='" + strings.ReplaceAll(s.Env[k], "'", `'\''`) + "'\n")
	}
	return writeFile(filepath.Join(upper, "etc/profile.d/devbox-env.sh"), sb.String())
}

// runInBuild runs args in a build container over b's layers, whose
// writable layer is tmp/upper; it shares the host's network, as package
// managers need it.
func runInBuild(ctx context.Context, s *Spec, b *Built, tmp string, args, env []string, o BuildOptions) error {
	cfg := runtime.Config{
		ID:       "build-" + filepath.Base(tmp),
		Hostname: s.Hostname,
		Lower:    b.Lower,
		Upper:    filepath.Join(tmp, "upper"),
		Work:     filepath.Join(tmp, "work"),
		Rootfs:   filepath.Join(tmp, "rootfs"),
		Network:  runtime.NetworkHost,
	}
	for _, d := range []string{cfg.Work, cfg.Rootfs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// DNS as the host has it; the mount point is removed from the layer
	// afterwards if the image had no /etc/resolv.conf of its own.
	hadResolv := existsInLayers(b.Lower, "etc/resolv.conf")
	cfg.Files = []runtime.Mount{{Source: "/etc/resolv.conf", Target: "/etc/resolv.conf", Readonly: true}}
	cwd := "/"
	if s.Workdir != "" && existsInLayers(b.Lower, strings.TrimPrefix(s.Workdir, "/")) {
		cwd = s.Workdir
	}
	cfg.Process = &runtime.Process{
		Args: args,
		Env:  Environ(s, b.Image, append([]string{"HOME=/root", "HOSTNAME=" + s.Hostname}, env...)...),
		Cwd:  cwd,
	}
	c, err := runtime.Start(runtime.Options{Config: cfg, Limits: limits(s), Stdout: o.Stdout, Stderr: o.Stderr})
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.Signal(os.Kill) })
	defer stop()
	code, err := c.Wait()
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !hadResolv {
		if fi, err := os.Lstat(filepath.Join(cfg.Upper, "etc/resolv.conf")); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
			os.Remove(filepath.Join(cfg.Upper, "etc/resolv.conf"))
		}
	}
	if code != 0 {
		return fmt.Errorf("%s exited with %d", strings.Join(args[:min(len(args), 2)], " "), code)
	}
	return nil
}

// readRecord reads a step's record; a missing or broken one leaves v as
// it was (the layer itself is what matters).
func readRecord(path string, v any) {
	if data, err := os.ReadFile(path); err == nil {
		json.Unmarshal(data, v)
	}
}

// LayersInUse are the store layers that builds stand on: `image prune`
// keeps them even when no image record names them any more.
func LayersInUse(root string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(root, "builds", "*.json"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		var rec buildRecord
		readRecord(f, &rec)
		out = append(out, rec.BaseLayers...)
	}
	return out, nil
}
