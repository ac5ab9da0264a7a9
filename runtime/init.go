package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Service is the init's main job when the container has no main process:
// devbox's SSH server. It returns when ctx ends (the container is
// stopping) or on a fatal error.
type Service func(ctx context.Context, env ServiceEnv) error

// ServiceEnv is what the init gives its service.
type ServiceEnv struct {
	Config    json.RawMessage
	Listeners []net.Listener
	// Files are the contents of Config.ServiceFiles.
	Files map[string][]byte
	// Start starts a process with the container's reduced capabilities
	// and returns a channel for its wait status.
	Start StartFunc
	// Ready tells the parent that the service is serving.
	Ready func()
}

// InitMain is the container's PID 1: it builds the root file system,
// waits for the parent's go, runs the main process or the service, and
// reaps every process of the container until the main job ends.
func InitMain(service Service) int {
	// Threads share the mount namespace; fewer of them is less to clean.
	runtime.GOMAXPROCS(2)
	ctrl := os.NewFile(configFD, "control")
	c, files, err := initSetup(ctrl)
	if err != nil {
		sendMsg(ctrl, "error: "+err.Error(), nil)
		awaitGo(ctrl)
		return 1
	}
	code, err := initRun(c, files, ctrl, service)
	if err != nil {
		// The parent may be waiting for "started": tell it why not.
		if sendMsg(ctrl, "error: "+err.Error(), nil) != nil {
			fmt.Fprintf(os.Stderr, "devbox init: %v\n", err)
		}
	}
	return code
}

// watchState stops the container, as `devbox down` would (SIGTERM to
// the init), once the host file f was removed: an environment whose state
// root was deleted would otherwise run on with nothing left to stop it by
// but kill. A removed file has no links left.
func watchState(f *os.File) {
	for range time.Tick(2 * time.Second) {
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err == nil && st.Nlink == 0 {
			unix.Kill(os.Getpid(), unix.SIGTERM)
			return
		}
	}
}

// awaitGo waits (a little) for the parent's go after a failed set-up and
// takes it: a socket closed with a message unread resets the connection,
// and the parent, reading, would get ECONNRESET instead of the error
// message queued before it.
func awaitGo(ctrl *os.File) {
	tv := unix.Timeval{Sec: 2}
	unix.SetsockoptTimeval(int(ctrl.Fd()), unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	recvMsg(ctrl)
}

// initSetup reads the config and prepares the container up to the
// parent's go.
func initSetup(ctrl *os.File) (*Config, map[string][]byte, error) {
	msg, mounts, err := recvMsgFiles(ctrl)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	defer func() {
		for _, f := range mounts {
			f.Close()
		}
	}()
	var c Config
	if err := json.Unmarshal(msg, &c); err != nil {
		return nil, nil, fmt.Errorf("decode config: %w", err)
	}
	if c.Watch != "" && len(mounts) > 0 {
		go watchState(mounts[len(mounts)-1])
		mounts = mounts[:len(mounts)-1]
	}
	// Inherited descriptors must not reach the container's processes.
	for fd := configFD; fd < firstPortFD+len(c.Ports)+c.ServiceListeners; fd++ {
		unix.CloseOnExec(fd)
	}
	if err := setupRootfs(&c, mounts); err != nil {
		return nil, nil, err
	}
	if err := unix.Sethostname([]byte(c.Hostname)); err != nil {
		return nil, nil, fmt.Errorf("sethostname: %w", err)
	}
	if c.Network != NetworkHost && c.Network != NetworkShared {
		if err := loopbackUp(); err != nil {
			return nil, nil, err
		}
	}
	// The parent has placed us in our cgroup and network by its go.
	msg, _, err = recvMsg(ctrl)
	if err != nil || string(msg) != "go" {
		return nil, nil, fmt.Errorf("waiting for go: %q %v", msg, err)
	}
	return &c, c.ServiceData, nil
}

func initRun(c *Config, files map[string][]byte, ctrl *os.File, service Service) (int, error) {
	for i, port := range c.Ports {
		ln, err := listenerFromFD(firstPortFD+i, port)
		if err != nil {
			return 1, err
		}
		go relay(ln, port)
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH)
	sp, err := newSpawner(c.Cgroup2, c.NoSeccomp)
	if err != nil {
		return 1, err
	}
	reaper := NewReaper()
	start := func(path string, args []string, attr *syscall.ProcAttr) (int, <-chan unix.WaitStatus, error) {
		return reaper.Start(func() (int, error) { return sp.start(path, args, attr) })
	}
	if c.Process != nil {
		return runMain(c.Process, start, reaper, sigs, ctrl)
	}
	if service == nil || c.Service == nil {
		return 1, errors.New("no main process and no service")
	}
	env := ServiceEnv{Config: c.Service, Files: files, Start: start}
	if env.Listeners, err = serviceListeners(c); err != nil {
		return 1, err
	}
	return runService(service, env, reaper, sigs, ctrl)
}

// runMain runs the main process to its end, passing signals on to it and
// reaping every process of the container meanwhile.
func runMain(p *Process, start StartFunc, reaper *Reaper, sigs <-chan os.Signal, ctrl *os.File) (int, error) {
	pid, status, err := startMain(start, p, ctrl)
	if err != nil {
		return 127, err
	}
	ctrl.Close()
	for {
		select {
		case sig := <-sigs:
			if sig == unix.SIGCHLD {
				reaper.Reap()
			} else {
				unix.Kill(pid, sig.(syscall.Signal))
			}
		case ws := <-status:
			return ExitCode(ws), nil
		}
	}
}

// serviceListeners are the listening sockets passed in for the service,
// after the published ports' descriptors.
func serviceListeners(c *Config) ([]net.Listener, error) {
	var lns []net.Listener
	for i := 0; i < c.ServiceListeners; i++ {
		f := os.NewFile(uintptr(firstPortFD+len(c.Ports)+i), "service")
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("service listener %d: %w", i, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// runService runs the service until it returns: its readiness is passed
// on to the parent, SIGTERM, SIGINT and SIGHUP stop it, and every process
// of the container is reaped meanwhile.
func runService(service Service, env ServiceEnv, reaper *Reaper, sigs <-chan os.Signal, ctrl *os.File) (int, error) {
	ready := make(chan struct{})
	var once sync.Once
	env.Ready = func() { once.Do(func() { close(ready) }) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- service(ctx, env) }()
	idle := newIdleWatch()
	defer idle.stop()
	for {
		select {
		case <-idle.tick():
			idle.check()
		case <-ready:
			ready = nil
			sendMsg(ctrl, "started", nil)
			ctrl.Close()
		case sig := <-sigs:
			switch sig {
			case unix.SIGCHLD:
				reaper.Reap()
			case unix.SIGTERM, unix.SIGINT, unix.SIGHUP:
				cancel()
			}
		case err := <-done:
			if err != nil {
				return 1, err
			}
			return 0, nil
		}
	}
}

// ExitCode is a shell's view of a wait status: the exit code, or 128+N
// for a process killed by signal N.
func ExitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// StartFunc starts a process in the container, with the container's
// reduced capabilities, and returns its pid and a channel for its wait
// status (the init's reaper fills it).
type StartFunc func(path string, args []string, attr *syscall.ProcAttr) (pid int, status <-chan unix.WaitStatus, err error)

// Credential is p's user, group and supplementary groups; root with none
// named keeps init's (setgroups is not called).
func (p *Process) Credential() *syscall.Credential {
	c := &syscall.Credential{Uid: uint32(p.UID), Gid: uint32(p.GID), NoSetGroups: p.UID == 0 && len(p.Groups) == 0}
	for _, g := range p.Groups {
		c.Groups = append(c.Groups, uint32(g))
	}
	return c
}

// startMain starts the main process, with a pseudo-terminal from the
// container's devpts if asked, whose master goes to the parent.
func startMain(start StartFunc, p *Process, ctrl *os.File) (int, <-chan unix.WaitStatus, error) {
	if err := checkCwd(p.Cwd); err != nil {
		return 0, nil, err
	}
	attr := &syscall.ProcAttr{
		Dir:   p.Cwd,
		Env:   p.Env,
		Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{
			Setsid:     true,
			Credential: p.Credential(),
		},
	}
	var tty *os.File
	if p.TTY {
		master, slave, err := pty.Open()
		if err != nil {
			return 0, nil, fmt.Errorf("open pty: %w", err)
		}
		defer slave.Close()
		defer master.Close()
		tty = master
		if p.Rows > 0 && p.Cols > 0 {
			pty.Setsize(master, &pty.Winsize{Rows: p.Rows, Cols: p.Cols})
		}
		attr.Files = []uintptr{slave.Fd(), slave.Fd(), slave.Fd()}
		attr.Sys.Setctty = true
		attr.Sys.Ctty = 0
	}
	path, err := LookPath(p.Args[0], p.Env)
	if err != nil {
		return 0, nil, err
	}
	pid, status, err := start(path, p.Args, attr)
	if err != nil {
		return 0, nil, fmt.Errorf("exec %s: %w", p.Args[0], err)
	}
	return pid, status, sendMsg(ctrl, "started", tty)
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

// DefaultPath is the PATH of a process whose image and spec set none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// LookPath finds a command on the PATH of env, as a shell in the
// container would.
func LookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := DefaultPath
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
