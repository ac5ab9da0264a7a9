package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Options are what a container needs from the host besides its Config.
type Options struct {
	Config Config
	// PortMaps publish container ports on host addresses; the sockets are
	// bound here, before the container exists, so a port in use is an
	// error before anything starts.
	PortMaps []PortMap
	Limits   Limits
	// StateRoot holds network allocations and locks shared by containers.
	StateRoot string
	Subnet    string
	// Detach leaves the container running when this process exits (up);
	// otherwise it dies with us (run).
	Detach bool
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// PortMap publishes ContainerPort on HostIP:HostPort.
type PortMap struct {
	HostIP        string
	HostPort      int
	ContainerPort int
}

// Limits are cgroup limits; zero means none.
type Limits struct {
	CPUs        float64
	MemoryBytes int64
	Pids        int64
}

// Container is a started container, seen from the host.
type Container struct {
	ID   string
	Pid  int
	IP   string // its address on the bridge, if any
	cmd  *exec.Cmd
	ctrl *os.File
	// TTY is the master of the main process's terminal, when it has one.
	TTY     *os.File
	cleanup []func()
}

// Start creates the container and starts its main process.
func Start(o Options) (*Container, error) {
	c := &Container{ID: o.Config.ID}
	ok := false
	defer func() {
		if !ok {
			c.kill()
			c.Cleanup()
		}
	}()
	listeners, err := listenPorts(o)
	if err != nil {
		return nil, err
	}
	for _, l := range listeners {
		c.cleanup = append(c.cleanup, func() { l.Close() })
	}
	exe, err := sealedSelf()
	if err != nil {
		return nil, fmt.Errorf("seal devbox binary: %w", err)
	}
	defer exe.Close()
	parent, child, err := socketPair()
	if err != nil {
		return nil, err
	}
	defer child.Close()
	c.ctrl = parent
	c.cleanup = append(c.cleanup, func() { parent.Close() })

	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if o.Config.Network != NetworkHost {
		flags |= unix.CLONE_NEWNET
	}
	cmd := &exec.Cmd{
		Path:       "/proc/self/fd/" + strconv.Itoa(int(exe.Fd())),
		Args:       []string{"devbox-init", initArg},
		Env:        []string{},
		Stdin:      o.Stdin,
		Stdout:     o.Stdout,
		Stderr:     o.Stderr,
		ExtraFiles: append([]*os.File{child}, listeners...),
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: flags,
			Setsid:     o.Detach,
		},
	}
	if !o.Detach {
		cmd.SysProcAttr.Pdeathsig = unix.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start container: %w", err)
	}
	c.cmd, c.Pid = cmd, cmd.Process.Pid
	o.Config.Ports = nil
	for _, p := range o.PortMaps {
		o.Config.Ports = append(o.Config.Ports, p.ContainerPort)
	}
	cfg, err := json.Marshal(o.Config)
	if err != nil {
		return nil, err
	}
	if err := sendMsg(parent, string(cfg), nil); err != nil {
		return nil, err
	}
	// While the init builds the root file system: limits and network.
	cg, err := newCgroup(o.Config.ID, o.Limits)
	if err != nil {
		return nil, err
	}
	if cg != nil {
		c.cleanup = append(c.cleanup, cg.remove)
		if err := cg.add(c.Pid); err != nil {
			return nil, err
		}
	}
	if o.Config.Network == NetworkBridge {
		ip, release, err := connectBridge(o.StateRoot, o.Subnet, o.Config.ID, c.Pid)
		if err != nil {
			return nil, err
		}
		c.IP = ip
		c.cleanup = append(c.cleanup, release)
	}
	// The init is building the root file system meanwhile; go lets it
	// start the main process, whose start (or failure) it reports.
	if err := sendMsg(parent, "go", nil); err != nil {
		return nil, fmt.Errorf("container init: %w", c.initFailure(err))
	}
	if o.Config.Process != nil {
		msg, tty, err := recvMsg(parent)
		if err != nil {
			return nil, fmt.Errorf("container init: %w", c.initFailure(err))
		}
		if s := string(msg); s != "started" {
			return nil, &StartError{Msg: strings.TrimPrefix(s, "error: "), Code: c.exitStatus()}
		}
		if o.Config.Process.TTY && tty == nil {
			return nil, errors.New("container terminal: no pty received")
		}
		c.TTY = tty
	}
	ok = true
	return c, nil
}

// StartError is a main process that could not be started (not found, not
// executable); Code is what a shell would exit with (127).
type StartError struct {
	Msg  string
	Code int
}

func (e *StartError) Error() string { return e.Msg }

// exitStatus waits for the init to exit and returns its status.
func (c *Container) exitStatus() int {
	var ws unix.WaitStatus
	if _, err := unix.Wait4(c.Pid, &ws, 0, nil); err != nil {
		return 1
	}
	c.cmd.Process.Release()
	return exitCode(ws)
}

// initFailure explains a broken control socket: usually the init died.
func (c *Container) initFailure(err error) error {
	if c.cmd != nil && c.cmd.ProcessState == nil {
		var ws unix.WaitStatus
		if pid, _ := unix.Wait4(c.Pid, &ws, unix.WNOHANG, nil); pid == c.Pid {
			return fmt.Errorf("init exited (%d): %w", exitCode(ws), err)
		}
	}
	return err
}

// Wait waits for the container to end and returns its main process's
// exit code; then it removes what the container had on the host.
func (c *Container) Wait() (int, error) {
	defer c.Cleanup()
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			return exitCode(unix.WaitStatus(ws)), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}

// Signal sends sig to the init, which passes it on to the main process.
func (c *Container) Signal(sig os.Signal) error {
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	return c.cmd.Process.Signal(sig)
}

func (c *Container) kill() {
	if c.cmd != nil && c.cmd.Process != nil && c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
}

// Cleanup removes the container's cgroup, network address and sockets;
// the kernel has already torn down its mounts with its mount namespace.
func (c *Container) Cleanup() {
	for i := len(c.cleanup) - 1; i >= 0; i-- {
		c.cleanup[i]()
	}
	c.cleanup = nil
}

// listenPorts binds every published port on the host.
func listenPorts(o Options) ([]*os.File, error) {
	if o.Config.Network == NetworkHost && len(o.PortMaps) > 0 {
		return nil, errors.New("ports cannot be published with network mode host: the container's ports are the host's")
	}
	var files []*os.File
	for _, p := range o.PortMaps {
		addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("publish %s -> %d: %w", addr, p.ContainerPort, err)
		}
		f, err := ln.(*net.TCPListener).File()
		ln.Close()
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// OnCleanup adds f to what Cleanup does, after everything added before.
func (c *Container) OnCleanup(f func()) {
	c.cleanup = append([]func(){f}, c.cleanup...)
}

// ProcessStart is the start time of process pid (0 if there is none):
// with the pid, it tells a live process from a reused pid.
func ProcessStart(pid int) uint64 { return processStart(pid) }
