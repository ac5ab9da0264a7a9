package runtime

import (
	"fmt"
	"os"
	goruntime "runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// fork binds the published ports and forks the init from a sealed copy of
// the devbox binary into new namespaces; it returns our end of the
// control socket.
func (c *Container) fork(o *Options) (*os.File, error) {
	listeners, err := listenPorts(*o)
	if err != nil {
		return nil, err
	}
	c.files = append(c.files, listeners...)
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
	c.files = append(c.files, parent)
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer null.Close() // the init has its own copy once forked
	std := func(f *os.File) uintptr {
		if f == nil {
			return null.Fd()
		}
		return f.Fd()
	}
	files := []uintptr{std(o.Stdin), std(o.Stdout), std(o.Stderr), child.Fd()}
	for _, l := range listeners {
		files = append(files, l.Fd())
	}
	for _, l := range o.ServiceListeners {
		files = append(files, l.Fd())
	}
	o.Config.ServiceListeners = len(o.ServiceListeners)
	o.Config.Cgroup2 = cgroupV2()
	exePath, exeCopy, err := execPath(exe, len(files))
	if err != nil {
		return nil, err
	}
	defer exeCopy.Close()
	pid, err := c.forkExec(exePath, files, cloneAttr(*o), o.JoinNet)
	if err != nil {
		return nil, fmt.Errorf("start container: %w", err)
	}
	c.Pid = pid
	return parent, nil
}

// forkExec starts the init. The parent-death signal of a container that
// dies with us is sent when the thread that forked it exits, not the
// process, and threads that joined other namespaces are thrown away (see
// onThread): so the init is forked from a thread locked for the
// container's life, released by Cleanup. syscall.ForkExec rather than
// os/exec: the latter first probes for pidfd support with a fork of its
// own, a millisecond per start.
//
// A container that joins another's network namespace (joinNet, a pid) is
// forked from a thread that joined it first: a clone without
// CLONE_NEWNET takes the forking thread's. That thread is thrown away.
func (c *Container) forkExec(path string, files []uintptr, sys *syscall.SysProcAttr, joinNet int) (int, error) {
	attr := &syscall.ProcAttr{Env: []string{}, Files: files, Sys: sys}
	argv := []string{"devbox-init", initArg}
	if joinNet != 0 {
		return forkInNet(joinNet, func() (int, error) { return syscall.ForkExec(path, argv, attr) })
	}
	if sys.Pdeathsig == 0 {
		return syscall.ForkExec(path, argv, attr)
	}
	type result struct {
		pid int
		err error
	}
	done := make(chan result)
	release := make(chan struct{})
	go func() {
		goruntime.LockOSThread()
		defer goruntime.UnlockOSThread()
		pid, err := syscall.ForkExec(path, argv, attr)
		done <- result{pid, err}
		if err == nil {
			<-release
		}
	}()
	r := <-done
	if r.err == nil {
		c.cleanup = append(c.cleanup, func() { close(release) })
	}
	return r.pid, r.err
}

// cloneAttr are the init's namespaces and its tie to us.
func cloneAttr(o Options) *syscall.SysProcAttr {
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if o.Config.Network != NetworkHost && o.JoinNet == 0 {
		flags |= unix.CLONE_NEWNET
	}
	sys := &syscall.SysProcAttr{Cloneflags: flags, Setsid: o.Detach}
	if m := o.Config.UserNS; m != nil {
		// Go writes the maps before the child goes on to exec the init.
		sys.Cloneflags |= unix.CLONE_NEWUSER
		sys.UidMappings, sys.GidMappings = m.UIDMappings(), m.GIDMappings()
		sys.GidMappingsEnableSetgroups = true
		// The init's host uid 0 is not mapped: it becomes the namespace's
		// root, or exec would leave it no capabilities.
		sys.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	if !o.Detach {
		sys.Pdeathsig = unix.SIGKILL
	}
	return sys
}

// forkInNet runs fork on a thread that has joined the network namespace
// of process pid, and throws the thread away afterwards.
func forkInNet(pid int, fork func() (int, error)) (int, error) {
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return 0, fmt.Errorf("network of the container to join: %w", err)
	}
	defer ns.Close()
	type result struct {
		pid int
		err error
	}
	done := make(chan result)
	go func() {
		// Never unlocked: the thread dies with the goroutine.
		goruntime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{0, fmt.Errorf("join the network of pid %d: %w", pid, err)}
			return
		}
		pid, err := fork()
		done <- result{pid, err}
	}()
	r := <-done
	return r.pid, r.err
}
