package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/devenv/spec"
	container "github.com/devbox/devbox/runtime"
	"github.com/devbox/devbox/sshd"
)

// waitDeps waits until each service of dependsOn is as its condition
// asks: started (it is, once up started it), healthy, or exited with 0.
func (e *Envs) waitDeps(ctx context.Context, env *Env, dependsOn spec.DependsOn, out io.Writer) error {
	for _, name := range slices.Sorted(maps.Keys(dependsOn)) {
		dep := env.service(name)
		if dep == nil {
			return fmt.Errorf("depends on %s, which did not start", name)
		}
		var err error
		began := time.Now()
		switch dependsOn[name] {
		case spec.ServiceHealthy:
			if err = e.waitHealthy(ctx, env, dep); err == nil {
				fmt.Fprintf(out, "service %s … healthy after %s\n", name, time.Since(began).Round(time.Millisecond))
			}
		case spec.ServiceCompleted:
			if err = waitCompleted(ctx, dep); err == nil {
				fmt.Fprintf(out, "service %s … completed after %s\n", name, time.Since(began).Round(time.Millisecond))
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// service is env's service called name, or nil.
func (env *Env) service(name string) *Service {
	for _, s := range env.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// waitHealthy probes svc until its healthcheck passes. It probes more
// often than the check's interval, so that up waits no longer than it
// must, and gives up when Docker would have called it unhealthy: after
// the start period and retries intervals.
func (e *Envs) waitHealthy(ctx context.Context, env *Env, svc *Service) error {
	p := svc.Probe
	deadline := time.Now().Add(p.StartPeriod + time.Duration(p.Retries)*p.Interval)
	poll := min(p.Interval, 250*time.Millisecond)
	for {
		err := e.probe(env, svc, p.Timeout)
		if err == nil {
			return nil
		}
		if !svc.init().Alive() {
			return fmt.Errorf("%s exited before it was healthy (devbox logs --service %s)", svc.Name, svc.Name)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is unhealthy: %w", svc.Name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// probe runs svc's healthcheck once, in it, as its user.
func (e *Envs) probe(env *Env, svc *Service, timeout time.Duration) error {
	client, err := e.DialService(env, svc.Name)
	if err != nil {
		return err
	}
	defer client.Close()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		code, err := sshd.Run(client, sshd.Command{Args: svc.Probe.Args, Stdout: &out, Stderr: &out})
		if err == nil && code != 0 {
			err = fmt.Errorf("%s: exit %d: %s", strings.Join(svc.Probe.Args, " "), code, strings.TrimSpace(out.String()))
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("%s: no answer in %s", strings.Join(svc.Probe.Args, " "), timeout)
	}
}

// Health is a running service's health now: "healthy" or "unhealthy"
// (its healthcheck, run once), or "" when it has none.
func (e *Envs) Health(env *Env, svc *Service) string {
	if svc.Probe == nil || svc.Status != "running" {
		return ""
	}
	if e.probe(env, svc, min(svc.Probe.Timeout, 5*time.Second)) != nil {
		return "unhealthy"
	}
	return "healthy"
}

// waitCompleted waits until svc's init, a child of this up, has exited,
// and wants its exit code 0.
func waitCompleted(ctx context.Context, svc *Service) error {
	for svc.exitCode == nil {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(svc.Pid, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.ECHILD):
			return fmt.Errorf("%s was not started by this up: cannot tell how it exited", svc.Name)
		case err != nil:
			return err
		case pid == svc.Pid:
			code := container.ExitCode(ws)
			svc.exitCode = &code // reaped once: another wait reads it here
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if *svc.exitCode != 0 {
		return fmt.Errorf("%s exited with code %d (devbox logs --service %s)", svc.Name, *svc.exitCode, svc.Name)
	}
	return nil
}

// DialService connects to the SSH server of env's service name, over its
// exec socket, as its user.
func (e *Envs) DialService(env *Env, name string) (*gossh.Client, error) {
	svc := env.service(name)
	if svc == nil {
		return nil, fmt.Errorf("%s has no service %q", env.Name, name)
	}
	client, err := e.dialSocket(env, svc.Socket, svc.User)
	if err != nil {
		return nil, fmt.Errorf("connect to %s's service %s: %w", env.Name, name, err)
	}
	return client, nil
}

// ServiceLogPath is the log of env's service name: its main process's
// output and its supervisor's lines.
func (e *Envs) ServiceLogPath(env, name string) (string, error) {
	if err := spec.CheckName(name); err != nil {
		return "", err
	}
	return e.dir(env).Service(name).Log(), nil
}
