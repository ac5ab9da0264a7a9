package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Rootless networking. A user cannot make a bridge or a veth on the host,
// so a container with its own network namespace reaches the network
// through pasta (Debian's passt), a user-mode TCP/IP stack on the host's
// side of a tap device. slirp4netns does the same; pasta was chosen by
// measure, on this project's machine: a 1 GB download from the host at
// 1.55 GB/s against 0.76, for 27 ms of start against 9.
//
// The container gets an address of its own (not the host's, pasta's
// default, which would hide the host's address from it). --no-map-gw: the
// gateway does not lead to the host's loopback, where other environments'
// ports listen. Published ports are not pasta's: they stay the sockets the
// parent binds (see listenPorts), relayed by the init.
//
// pasta must live as long as the container and no longer, even when the
// container is killed and nobody runs devbox again. It is started in the
// container's PID namespace (and, daemonized, moves to one nested in it):
// when the init ends the kernel kills it with every other process there.
// pasta makes itself non-dumpable, so the container, whose capabilities
// never include CAP_SYS_PTRACE, cannot trace it; it sees it in its ps, and
// its root may kill it, which only cuts its own network.
const (
	pastaAddr    = "10.0.2.100"
	pastaGateway = "10.0.2.2"
)

// connectPasta connects the network namespace of the container whose init
// is pid to the host's, and returns once it is configured.
func connectPasta(pid int) error {
	bin, err := exec.LookPath("pasta")
	if err != nil {
		return errors.New(`network: rootless, a container's own network takes pasta: sudo apt-get install passt (or [network] mode = "none" or "host")`)
	}
	ns := "/proc/" + strconv.Itoa(pid) + "/ns/"
	pidns, err := os.Open(ns + "pid")
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	defer pidns.Close()
	// The init is not dumpable: pasta, which drops its capabilities, gets
	// its network namespace open, as descriptor 3.
	netns, err := os.Open(ns + "net")
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	defer netns.Close()
	args := []string{"pasta", "--config-net", "--quiet",
		"--address", pastaAddr, "--netmask", "24", "--gateway", pastaGateway, "--no-map-gw",
		"--tcp-ports", "none", "--udp-ports", "none", "--tcp-ns", "none", "--udp-ns", "none",
		"--netns", "/proc/self/fd/3", "--no-netns-quit"}
	var stderr bytes.Buffer
	_, err = onThread(func() (*os.File, error) {
		// The thread's children are born in the container's PID namespace.
		if err := unix.Setns(int(pidns.Fd()), unix.CLONE_NEWPID); err != nil {
			return nil, fmt.Errorf("join the container's PID namespace: %w", err)
		}
		return nil, runToExit(bin, args, netns, &stderr)
	})
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "tun") {
			msg += " (pasta needs /dev/net/tun open to users, mode 0666 as udev makes it)"
		}
		return fmt.Errorf("network: pasta: %w: %s", err, msg)
	}
	return nil
}

// runToExit forks and execs bin from this thread, with fd3 as its
// descriptor 3, and waits for it; its standard error goes to stderr. os/exec would fork from any thread.
func runToExit(bin string, args []string, fd3 *os.File, stderr *bytes.Buffer) error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	pid, err := syscall.ForkExec(bin, args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{null.Fd(), null.Fd(), w.Fd(), fd3.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	w.Close()
	if err != nil {
		return err
	}
	// pasta returns once the namespace is configured; one that hangs
	// must not hang up.
	timer := time.AfterFunc(30*time.Second, func() { unix.Kill(pid, unix.SIGKILL) })
	defer timer.Stop()
	var ws unix.WaitStatus
	for {
		if _, err = unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
			break
		}
	}
	if err == nil && ws.Exited() && ws.ExitStatus() == 0 {
		return nil
	}
	// A daemon that was started may hold the pipe: read what is there.
	r.SetReadDeadline(time.Now().Add(time.Second))
	stderr.ReadFrom(r)
	if err != nil {
		return err
	}
	return fmt.Errorf("exit status %d", ExitCode(ws))
}
