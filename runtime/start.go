package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/runtime/devices"
	"github.com/devbox/devbox/runtime/userns"
)

// Options are what a container needs from the host besides its Config.
type Options struct {
	Config Config
	// PortMaps publish container ports on host addresses; the sockets are
	// bound here, before the container exists, so a port in use is an
	// error before anything starts.
	PortMaps []PortMap
	Limits   Limits
	Subnet   string
	// JoinNet, if set, is the init pid of a running container whose
	// network namespace this one shares (compose's network_mode:
	// service:NAME), as a pod's containers share one; Config.Network is
	// then NetworkShared, and nothing of the network is this one's.
	// Only with Detach: the fork comes from a thread that is thrown away.
	JoinNet int
	// Group, on the bridge, makes the container reachable only from the
	// containers of the same group (an environment and its services).
	Group string
	// ServiceListeners are listening sockets for the init's service.
	ServiceListeners []*os.File
	// Detach leaves the container running when this process exits (up);
	// otherwise it dies with us (run).
	Detach bool
	// The init's standard files, which the main process inherits; nil
	// is /dev/null.
	Stdin  *os.File
	Stdout *os.File
	Stderr *os.File
	// Record, if set, is given the init's pid right after the fork and
	// again with what the container holds on the host once its cgroup
	// and address exist, both before the init may start anything: a
	// caller that writes them down leaves no container unknown to it,
	// whenever it is killed. An error aborts the start.
	Record func(pid int, l Leftovers) error
}

// PortMap publishes ContainerPort on HostIP:HostPort.
type PortMap struct {
	HostIP        string `json:"host_ip"`
	HostPort      int    `json:"host_port"`
	ContainerPort int    `json:"container_port"`
}

func (m PortMap) String() string {
	return fmt.Sprintf("%s->%d/tcp", net.JoinHostPort(m.HostIP, strconv.Itoa(m.HostPort)), m.ContainerPort)
}

// Limits are cgroup limits; zero means none.
type Limits struct {
	CPUs        float64
	MemoryBytes int64
	Pids        int64
}

// Container is a started container, seen from the host.
type Container struct {
	ID  string
	Pid int
	IP  string // its address on the bridge, if any
	// status is the init's wait status once reaped.
	status *unix.WaitStatus
	// TTY is the master of the main process's terminal, when it has one.
	TTY *os.File
	// Warnings are what the container could not get as asked (a mount
	// that could not be idmapped), to be told to the user.
	Warnings  []string
	cleanup   []func()
	files     []*os.File // our copies of the container's sockets
	leftovers Leftovers
}

// Detach lets the container run on without this process: only our copies
// of its sockets are closed; its Leftovers are for whoever stops it.
func (c *Container) Detach() Leftovers {
	c.closeFiles()
	c.cleanup = nil
	return c.leftovers
}

func (c *Container) closeFiles() {
	for _, f := range c.files {
		f.Close()
	}
	c.files = nil
}

// Start creates the container and starts its main process: it binds the
// published ports, forks the init into its namespaces, records it, sends
// it its config, sets up its cgroup and network while the init builds the
// root file system, and lets it go.
func Start(o Options) (*Container, error) {
	c := &Container{ID: o.Config.ID}
	ok := false
	defer func() {
		if !ok {
			c.kill()
			c.Cleanup()
		}
	}()
	ctl, err := c.fork(&o)
	if err != nil {
		return nil, err
	}
	c.leftovers.Cgroups = plannedCgroups(o.Config.ID)
	c.sweepProject(o.Config)
	if err := c.record(o); err != nil {
		return nil, err
	}
	// Moving the init into its cgroup waits out an RCU grace period on
	// cgroup v1 (12 ms here, a quarter of a run): it happens while the
	// config is sent and the init starts and builds its root file system.
	attached := make(chan cgroupAttach, 1)
	go func(id string, devices []string, limits Limits, pid int) {
		attached <- attachCgroup(id, devices, limits, pid)
	}(o.Config.ID, slices.Clone(o.Config.Devices), o.Limits, c.Pid)
	sendErr := c.sendConfig(ctl, o)
	if err := errors.Join(sendErr, c.useCgroup(<-attached)); err != nil {
		return nil, err
	}
	if err := c.connect(o); err != nil {
		return nil, err
	}
	if err := c.record(o); err != nil {
		return nil, err
	}
	if err := c.letGo(ctl, o); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// record passes the container's init and leftovers to o.Record, if set.
func (c *Container) record(o Options) error {
	if o.Record == nil {
		return nil
	}
	if err := o.Record(c.Pid, c.leftovers); err != nil {
		return fmt.Errorf("record container: %w", err)
	}
	return nil
}

// sendConfig sends the init its config, with the mounts it gets from the
// host and the service's files.
func (c *Container) sendConfig(ctl *os.File, o Options) error {
	o.Config.Ports = nil
	for _, p := range o.PortMaps {
		o.Config.Ports = append(o.Config.Ports, p.ContainerPort)
	}
	o.Config.ServiceData = map[string][]byte{}
	for name, p := range o.Config.ServiceFiles {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		o.Config.ServiceData[name] = data
	}
	var ns *os.File
	if o.Config.UserNS != nil {
		var err error
		if ns, err = os.Open("/proc/" + strconv.Itoa(c.Pid) + "/ns/user"); err != nil {
			return fmt.Errorf("container user namespace: %w", err)
		}
		defer ns.Close()
	}
	mounts, err := prepareMounts(&o.Config, c.Pid, ns)
	if err != nil {
		return err
	}
	defer mounts.close() // the init has its own copies once sent
	c.Warnings = append(c.Warnings, mounts.warnings...)
	cfg, err := json.Marshal(o.Config)
	if err != nil {
		return err
	}
	files := mounts.files()
	if o.Config.Watch != "" {
		w, err := os.OpenFile(o.Config.Watch, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("watch %s: %w", o.Config.Watch, err)
		}
		defer w.Close()
		files = append(files, w)
	}
	return sendMsgFiles(ctl, string(cfg), files)
}

// deviceRules are the standard nodes and the host devices at paths.
func deviceRules(paths []string) ([]devices.Rule, error) {
	rules := devices.Default()
	for _, p := range paths {
		r, err := devices.FromPath(p)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// cgroupAttach is the init's cgroup, made and joined, or why not.
type cgroupAttach struct {
	cg      *cgroup
	warning string
	err     error
}

// attachCgroup makes container id's cgroup and puts the init pid in it.
// It touches no Container: it runs beside the rest of Start.
func attachCgroup(id string, devices []string, limits Limits, pid int) (a cgroupAttach) {
	rules, err := deviceRules(devices)
	if err != nil {
		return cgroupAttach{err: err}
	}
	a.cg, a.warning, a.err = containerCgroup(id, limits, rules)
	if a.err == nil && a.cg != nil {
		a.err = a.cg.add(pid)
	}
	return a
}

// useCgroup records what attachCgroup made, to be removed with the
// container (even when joining it failed).
func (c *Container) useCgroup(a cgroupAttach) error {
	if a.warning != "" {
		c.Warnings = append(c.Warnings, a.warning)
	}
	if a.cg == nil {
		if a.err == nil {
			c.leftovers.Cgroups = nil
		}
		return a.err
	}
	c.leftovers.Cgroups = a.cg.dirs
	c.cleanup = append(c.cleanup, a.cg.remove)
	return a.err
}

// connect puts the init, in bridge mode, on the bridge; the init is
// building the root file system meanwhile.
func (c *Container) connect(o Options) error {
	if o.Config.Network != NetworkBridge {
		return nil
	}
	if !userns.Initial() {
		return connectPasta(c.Pid)
	}
	dir, err := AllocDir()
	if err != nil {
		return err
	}
	l, err := connectBridge(dir, o.Subnet, o.Config.ID, o.Group, c.Pid)
	if err != nil {
		return err
	}
	if l.warning != "" {
		c.Warnings = append(c.Warnings, l.warning)
	}
	c.IP = l.ip.String()
	c.leftovers.IP, c.leftovers.AllocDir, c.leftovers.AddrOwner = c.IP, dir, l.owner
	c.cleanup = append(c.cleanup, func() { releaseAddr(l) })
	return nil
}

// letGo lets the init start the main process (or its service) and waits
// for it to say it did, or why not.
func (c *Container) letGo(ctl *os.File, o Options) error {
	// An init that failed while building the root file system has said why
	// and exited: the go then meets a closed socket, and the reason is
	// still there to read.
	sendErr := sendMsg(ctl, "go", nil)
	msg, tty, err := recvMsg(ctl)
	if sendErr != nil && err == nil && !strings.HasPrefix(string(msg), "error: ") {
		err = sendErr
	}
	if err != nil {
		return fmt.Errorf("container init: %w", c.initFailure(err))
	}
	if s := string(msg); s != "started" {
		return &StartError{Msg: strings.TrimPrefix(s, "error: "), Code: c.exitStatus()}
	}
	if o.Config.Process != nil && o.Config.Process.TTY && tty == nil {
		return errors.New("container terminal: no pty received")
	}
	c.TTY = tty
	return nil
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
	ws, err := c.wait(0)
	if err != nil || ws == nil {
		return 1
	}
	return ExitCode(*ws)
}

// wait reaps the init (once); with WNOHANG it may return nil.
func (c *Container) wait(options int) (*unix.WaitStatus, error) {
	if c.status != nil || c.Pid == 0 {
		return c.status, nil
	}
	var ws unix.WaitStatus
	for {
		pid, err := unix.Wait4(c.Pid, &ws, options, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if pid == c.Pid {
			c.status = &ws
		}
		return c.status, nil
	}
}

// initFailure explains a broken control socket: usually the init died.
func (c *Container) initFailure(err error) error {
	if ws, _ := c.wait(unix.WNOHANG); ws != nil {
		return fmt.Errorf("init exited (%d): %w", ExitCode(*ws), err)
	}
	return err
}

// Wait waits for the container to end and returns its main process's
// exit code; then it removes what the container had on the host.
func (c *Container) Wait() (int, error) {
	defer c.Cleanup()
	ws, err := c.wait(0)
	if err != nil {
		return 1, err
	}
	return ExitCode(*ws), nil
}

// Signal sends sig to the init, which passes it on to the main process.
func (c *Container) Signal(sig os.Signal) error {
	if c.Pid == 0 || c.status != nil {
		return nil
	}
	return unix.Kill(c.Pid, sig.(syscall.Signal))
}

func (c *Container) kill() {
	if c.Pid != 0 && c.status == nil {
		unix.Kill(c.Pid, unix.SIGKILL)
		c.wait(0)
	}
}

// Cleanup removes the container's cgroup, network address and sockets;
// the kernel has already torn down its mounts with its mount namespace.
func (c *Container) Cleanup() {
	c.closeFiles()
	for i := len(c.cleanup) - 1; i >= 0; i-- {
		c.cleanup[i]()
	}
	c.cleanup = nil
}

// OnCleanup adds f to what Cleanup does, after everything added before.
func (c *Container) OnCleanup(f func()) {
	c.cleanup = append([]func(){f}, c.cleanup...)
}
