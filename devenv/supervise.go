package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
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
	// Beside says the container outlives the process: it runs beside
	// an environment's SSH server, which stays the main job.
	Beside bool `json:"beside,omitempty"`
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
	out, err := logPipe(log)
	if err != nil {
		fmt.Fprintf(log, "devbox: %v\n", err)
		return 127
	}
	defer out.Close()
	delay := firstRestartDelay
	for n := 0; ; n++ {
		began := time.Now()
		pid, status, err := startSupervised(start, &s.Process, out)
		code := 127
		if err != nil {
			fmt.Fprintf(log, "devbox: %v\n", err)
		} else {
			select {
			case ws := <-status:
				code = container.ExitCode(ws)
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
		return container.ExitCode(ws)
	case <-time.After(s.Grace):
	}
	syscall.Kill(pid, syscall.SIGKILL)
	return container.ExitCode(<-status)
}

// logPipe is a pipe whose reading end is copied to log: the main
// process's output, through the cap (cappedLog).
func logPipe(log io.Writer) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("log pipe: %w", err)
	}
	go func() {
		io.Copy(log, r)
		r.Close()
	}()
	return w, nil
}

// startSupervised starts p in its own session, its output to out.
func startSupervised(start container.StartFunc, p *container.Process, out *os.File) (int, <-chan unix.WaitStatus, error) {
	path, err := container.LookPath(p.Args[0], p.Env)
	if err != nil {
		return 0, nil, err
	}
	pid, status, err := start(path, p.Args, &syscall.ProcAttr{
		Dir:   p.Cwd,
		Env:   p.Env,
		Files: []uintptr{0, out.Fd(), out.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true, Credential: p.Credential()},
	})
	if err != nil {
		return 0, nil, fmt.Errorf("start %s: %w", p.Args[0], err)
	}
	return pid, status, nil
}

// logCap bounds a service's log: past it, the log keeps its newest half,
// from a line's start, as Docker's json-file driver keeps its newest files.
const logCap = 10 << 20

// cappedLog is a service's log, opened for reading too (devbox up opens
// it so), written through the cap.
type cappedLog struct {
	mu   sync.Mutex
	f    *os.File
	size int64
}

func newCappedLog(f *os.File) *cappedLog {
	l := &cappedLog{f: f}
	if st, err := f.Stat(); err == nil {
		l.size = st.Size()
	}
	return l
}

func (l *cappedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.size+int64(len(p)) > logCap {
		l.cut()
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// cut keeps the newest half of the log, from the first line that starts
// in it.
func (l *cappedLog) cut() {
	keep := make([]byte, min(l.size, logCap/2))
	n, err := l.f.ReadAt(keep, l.size-int64(len(keep)))
	if err != nil && !errors.Is(err, io.EOF) {
		return // not readable: it grows on, as it was
	}
	keep = keep[:n]
	if i := bytes.IndexByte(keep, '\n'); i >= 0 {
		keep = keep[i+1:]
	}
	if l.f.Truncate(0) != nil {
		return
	}
	note := fmt.Appendf(nil, "%s devbox: the log reached %d MiB: its older half was cut\n", time.Now().UTC().Format(time.RFC3339), logCap>>20)
	w1, _ := l.f.Write(note)
	w2, _ := l.f.Write(keep)
	l.size = int64(w1 + w2)
}
