package devenv

import (
	"context"
	"fmt"
	"io"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	container "github.com/devbox/devbox/runtime"
)

// A service's init is its supervisor, as conmon is a podman container's:
// it runs the service's main process, restarts it as the service's
// restart policy says, stops it with its stop signal and grace period,
// and serves devbox exec (the SSH server, on the service's exec socket
// only). No daemon: each service's init is its own.

// supervised is a service's main process and how its init keeps it.
type supervised struct {
	Process container.Process `json:"process"`
	// Restart is compose's policy: "", "no", "always", "on-failure",
	// "unless-stopped"; MaxRestarts bounds on-failure (0: no bound).
	Restart     string        `json:"restart,omitempty"`
	MaxRestarts int           `json:"max_restarts,omitempty"`
	StopSignal  int           `json:"stop_signal,omitempty"`
	Grace       time.Duration `json:"grace"`
}

// restarts says whether the main process is started again after it
// ended with code, having been restarted n times already.
func (s *supervised) restarts(code, n int) bool {
	switch s.Restart {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (s.MaxRestarts == 0 || n < s.MaxRestarts)
	}
	return false
}

// Restart delays double from the first to the last, as Docker's do; one
// that ran longer than restartReset starts again from the first.
const (
	firstRestartDelay = 100 * time.Millisecond
	lastRestartDelay  = 10 * time.Second
	restartReset      = 10 * time.Second
)

// supervise runs s's main process until it ends for good or ctx ends
// (the service is stopping: the process gets its stop signal, and SIGKILL
// after the grace period), and returns its last exit code. What happens
// goes to log, the service's log.
func supervise(ctx context.Context, start container.StartFunc, s *supervised, log io.Writer) int {
	delay := firstRestartDelay
	for n := 0; ; n++ {
		began := time.Now()
		pid, status, err := startSupervised(start, &s.Process)
		code := 127
		if err != nil {
			fmt.Fprintf(log, "devbox: %v\n", err)
		} else {
			select {
			case ws := <-status:
				code = waitCode(ws)
			case <-ctx.Done():
				return stopSupervised(pid, status, s)
			}
		}
		if !s.restarts(code, n) {
			fmt.Fprintf(log, "devbox: the main process exited with code %d\n", code)
			return code
		}
		if time.Since(began) > restartReset {
			delay = firstRestartDelay
		}
		fmt.Fprintf(log, "devbox: the main process exited with code %d; restart %d in %s (restart: %s)\n", code, n+1, delay, s.Restart)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return code
		}
		delay = min(2*delay, lastRestartDelay)
	}
}

// stopSupervised stops the main process: its stop signal (SIGTERM by
// default), SIGKILL after the grace period.
func stopSupervised(pid int, status <-chan unix.WaitStatus, s *supervised) int {
	sig := syscall.Signal(s.StopSignal)
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	syscall.Kill(pid, sig)
	select {
	case ws := <-status:
		return waitCode(ws)
	case <-time.After(s.Grace):
	}
	syscall.Kill(pid, syscall.SIGKILL)
	return waitCode(<-status)
}

// startSupervised starts p in its own session, with the init's standard
// files (the service's log).
func startSupervised(start container.StartFunc, p *container.Process) (int, <-chan unix.WaitStatus, error) {
	path, err := container.LookPath(p.Args[0], p.Env)
	if err != nil {
		return 0, nil, err
	}
	cred := &syscall.Credential{Uid: uint32(p.UID), Gid: uint32(p.GID), NoSetGroups: p.UID == 0 && len(p.Groups) == 0}
	for _, g := range p.Groups {
		cred.Groups = append(cred.Groups, uint32(g))
	}
	pid, status, err := start(path, p.Args, &syscall.ProcAttr{
		Dir:   p.Cwd,
		Env:   p.Env,
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setsid: true, Credential: cred},
	})
	if err != nil {
		return 0, nil, fmt.Errorf("start %s: %w", p.Args[0], err)
	}
	return pid, status, nil
}

// waitCode is a shell's view of a wait status.
func waitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
