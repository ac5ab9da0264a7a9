package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// InitMain is the container's PID 1: it builds the root file system,
// waits for the parent's go, starts the main process and then reaps every
// process of the container until the main one exits, whose status it
// returns.
func InitMain() int {
	// Threads share the mount namespace; fewer of them is less to clean.
	runtime.GOMAXPROCS(2)
	ctrl := os.NewFile(configFD, "control")
	c, err := initSetup(ctrl)
	if err != nil {
		sendMsg(ctrl, "error: "+err.Error(), nil)
		return 1
	}
	code, err := initRun(c, ctrl)
	if err != nil {
		// The parent is waiting for "started": tell it why not.
		sendMsg(ctrl, "error: "+err.Error(), nil)
	}
	return code
}

// initSetup reads the config and prepares the container up to the
// parent's go.
func initSetup(ctrl *os.File) (*Config, error) {
	msg, _, err := recvMsg(ctrl)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(msg, &c); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	// Inherited descriptors must not reach the container's processes.
	for fd := configFD; fd < firstPortFD+len(c.Ports); fd++ {
		unix.CloseOnExec(fd)
	}
	if err := setupRootfs(&c); err != nil {
		return nil, err
	}
	if err := unix.Sethostname([]byte(c.Hostname)); err != nil {
		return nil, fmt.Errorf("sethostname: %w", err)
	}
	if c.Network != NetworkHost {
		if err := loopbackUp(); err != nil {
			return nil, err
		}
	}
	// The parent has placed us in our cgroup and network by its go.
	msg, _, err = recvMsg(ctrl)
	if err != nil || string(msg) != "go" {
		return nil, fmt.Errorf("waiting for go: %q %v", msg, err)
	}
	return &c, nil
}

func initRun(c *Config, ctrl *os.File) (int, error) {
	for i, port := range c.Ports {
		ln, err := listenerFromFD(firstPortFD+i, port)
		if err != nil {
			return 1, err
		}
		go relay(ln, port)
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH)
	sp, err := newSpawner()
	if err != nil {
		return 1, err
	}
	if c.Process == nil {
		return 1, errors.New("no main process")
	}
	pid, err := startMain(sp, c.Process, ctrl)
	if err != nil {
		return 127, err
	}
	ctrl.Close()
	for sig := range sigs {
		if sig != unix.SIGCHLD {
			unix.Kill(pid, sig.(syscall.Signal))
			continue
		}
		if status, done := reap(pid); done {
			return status, nil
		}
	}
	return 1, nil
}

// reap collects every exited child (orphans of the container are ours as
// PID 1) and reports the main process's status once it has exited.
func reap(main int) (status int, done bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return status, done
		}
		if pid == main {
			done = true
			status = exitCode(ws)
		}
	}
}

// exitCode is a shell's view of a wait status: the exit code, or 128+N
// for a process killed by signal N.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// startMain starts the main process, with a pseudo-terminal from the
// container's devpts if asked, whose master goes to the parent.
func startMain(sp *spawner, p *Process, ctrl *os.File) (int, error) {
	if err := checkCwd(p.Cwd); err != nil {
		return 0, err
	}
	attr := &syscall.ProcAttr{
		Dir:   p.Cwd,
		Env:   p.Env,
		Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{
			Setsid:     true,
			Credential: &syscall.Credential{Uid: uint32(p.UID), Gid: uint32(p.GID), NoSetGroups: p.UID == 0},
		},
	}
	var tty *os.File
	if p.TTY {
		master, slave, err := pty.Open()
		if err != nil {
			return 0, fmt.Errorf("open pty: %w", err)
		}
		defer slave.Close()
		tty = master
		if p.Rows > 0 && p.Cols > 0 {
			pty.Setsize(master, &pty.Winsize{Rows: p.Rows, Cols: p.Cols})
		}
		attr.Files = []uintptr{slave.Fd(), slave.Fd(), slave.Fd()}
		attr.Sys.Setctty = true
		attr.Sys.Ctty = 0
	}
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		if tty != nil {
			tty.Close()
		}
		return 0, err
	}
	pid, err := sp.start(path, p.Args, attr)
	if err != nil {
		if tty != nil {
			tty.Close()
		}
		return 0, fmt.Errorf("exec %s: %w", p.Args[0], err)
	}
	err = sendMsg(ctrl, "started", tty)
	if tty != nil {
		tty.Close()
	}
	return pid, err
}

// checkCwd makes sure the working directory is one of the container's:
// a directory inherited from the host must never be (CVE-2024-21626).
func checkCwd(dir string) error {
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	wd, err := os.Getwd()
	if err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("working directory %s is outside the container", dir)
	}
	return os.Chdir("/")
}

// lookPath finds a command on the PATH of the process's environment, as a
// shell in the container would.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %s: not found in PATH", name)
}

// loopbackUp brings up lo in the container's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}
