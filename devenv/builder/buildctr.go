package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/devbox/devbox/devenv/spec"
	container "github.com/devbox/devbox/runtime"
	"github.com/devbox/devbox/runtime/rootless"
	"github.com/devbox/devbox/runtime/userns"
)

// runExtra is what a Dockerfile's RUN adds to its build container: its
// --mount's mounts, its --network's mode ("" the build's own).
type runExtra struct {
	mounts  []container.Mount
	network container.NetworkMode
}

// runInBuild runs args in a build container over b's layers, whose
// writable layer is tmp/upper, with the spec's environment and workdir.
func runInBuild(ctx context.Context, s *spec.Spec, b *Result, tmp string, args, env []string, o Options) error {
	cwd := "/"
	if s.Workdir != "" && existsInLayers(b.Lower, strings.TrimPrefix(s.Workdir, "/")) {
		cwd = s.Workdir
	}
	// devbox's own steps see the build's SOURCE_DATE_EPOCH; a Dockerfile's
	// only as BuildKit gives it, a build argument.
	env = append(epochEnv(b.Plan.Epoch), env...)
	return runProcess(ctx, s, b, tmp, container.Process{
		Args: args,
		Env:  s.Environ(b.Image.Config, append([]string{"HOME=/root", "HOSTNAME=" + s.Hostname}, env...)...),
		Cwd:  cwd,
	}, o, runExtra{})
}

// runProcess runs proc in a build container over b's layers, whose
// writable layer is tmp/upper. It has a network namespace of its own with
// outbound NAT (bridge), as package managers need the network but a
// command from a cloned repository must not reach the host's loopback
// services; a spec whose network mode is host opts its builds in too.
func runProcess(ctx context.Context, s *spec.Spec, b *Result, tmp string, proc container.Process, o Options, extra runExtra) error {
	cfg := container.Config{
		ID:       "build-" + filepath.Base(tmp),
		Hostname: s.Hostname,
		Lower:    b.Lower,
		Upper:    filepath.Join(tmp, "upper"),
		Work:     filepath.Join(tmp, "work"),
		Rootfs:   filepath.Join(tmp, "rootfs"),
		Network:  container.NetworkBridge,
		Mounts:   extra.mounts,

		NoSeccomp: s.Security.Seccomp == "unconfined",
	}
	if s.Network.Mode == string(container.NetworkHost) {
		cfg.Network = container.NetworkHost
	}
	if extra.network != "" {
		cfg.Network = extra.network
	}
	for _, d := range []string{cfg.Work, cfg.Rootfs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// DNS as the host has it; the mount point is removed from the layer
	// afterwards if the image had no /etc/resolv.conf of its own.
	hadResolv := existsInLayers(b.Lower, "etc/resolv.conf")
	resolv := filepath.Join(tmp, "resolv.conf")
	if err := os.WriteFile(resolv, container.ResolvConf(cfg.Network), 0o644); err != nil {
		return err
	}
	cfg.Files = []container.Mount{{Source: resolv, Target: "/etc/resolv.conf", Readonly: true}}
	cfg.Process = &proc
	if b.ids != nil {
		m, release, err := b.ids.Transient()
		if err != nil {
			return err
		}
		defer release()
		cfg.UserNS = &m
	}
	c, err := container.Start(container.Options{Config: cfg, Limits: s.Limits(), Subnet: s.Network.Subnet, Stdout: o.Stdout, Stderr: o.Stderr})
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.Signal(os.Kill) })
	defer stop()
	code, err := c.Wait()
	if err != nil {
		return err
	}
	// A layer is stored in canonical ids, whoever mounts it.
	if err := userns.Shift(cfg.Upper, cfg.UserNS, nil); err != nil {
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
		err := fmt.Errorf("%s exited with %d", strings.Join(proc.Args[:min(len(proc.Args), 2)], " "), code)
		if h, ok := rootless.Active(); ok && h.Single {
			// apt's setgroups, a package's chown: the usual reasons.
			err = fmt.Errorf("%w\nThe environment has one user, root: %s", err, rootless.AddRangeHint(h.Username()))
		}
		return err
	}
	return nil
}
