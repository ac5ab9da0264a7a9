package devenv

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devbox/devbox/devenv/builder"
	"github.com/devbox/devbox/devenv/kube"
	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/internal/proc"
	"github.com/devbox/devbox/rootfs"
	container "github.com/devbox/devbox/runtime"
	"github.com/devbox/devbox/runtime/rootless"
	"github.com/devbox/devbox/sshd"
)

// Service is a service of a running environment, in its record: a
// container of its own, on the environment's bridge, whose init
// supervises the main process (supervise.go).
type Service struct {
	Name string `json:"name"`
	// Aliases are more names it is reached by.
	Aliases   []string            `json:"aliases,omitempty"`
	Pid       int                 `json:"pid"`
	PidStart  uint64              `json:"pid_start"`
	IP        string              `json:"ip,omitempty"`
	Ports     []container.PortMap `json:"ports,omitempty"`
	Leftovers container.Leftovers `json:"leftovers"`
	// Socket is its exec socket, where User's sessions start.
	Socket string        `json:"socket"`
	User   string        `json:"user"`
	Grace  time.Duration `json:"grace"`
	Probe  *spec.Probe   `json:"probe,omitempty"`
	// Status is derived, never stored: running or exited.
	Status string `json:"status"`
	// exitCode is its init's, once this up has reaped it.
	exitCode *int
}

func (svc *Service) init() proc.ID { return proc.ID{Pid: svc.Pid, Start: svc.PidStart} }

// upServices builds every service of s, then starts them in depends_on
// order, each once what it depends on is as its condition asks, and
// records each in env as it starts.
func (e *Envs) upServices(ctx context.Context, store *rootfs.Store, s *spec.Spec, env *Env, o UpOptions) ([]kube.Service, error) {
	if len(s.ServiceOrder) == 0 {
		return nil, nil
	}
	built := map[string]*builder.Result{}
	opts := o.Build
	opts.Lock = builder.LockOff // the lock is the environment's
	var forKube []kube.Service
	for _, name := range s.ServiceOrder {
		b, err := builder.Run(ctx, store, s.Services[name].Spec, opts)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		built[name] = b
		k, err := kubeService(s.Services[name], b)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		forKube = append(forKube, k)
	}
	return forKube, e.startServices(ctx, s, env, built, o.Build.Out)
}

// startServices starts s's services in order, each once what it depends
// on is as its condition asks, then waits for what the environment
// itself depends on.
func (e *Envs) startServices(ctx context.Context, s *spec.Spec, env *Env, built map[string]*builder.Result, out io.Writer) error {
	if out == nil {
		out = io.Discard
	}
	for _, name := range s.ServiceOrder {
		svc := s.Services[name]
		if err := e.waitDeps(ctx, env, svc.DependsOn, out); err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
		if err := e.startService(s, svc, built[name], env, out); err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
		rec := env.Services[len(env.Services)-1]
		fmt.Fprintf(out, "service %s … started (pid %d, %s)\n", name, rec.Pid, cmp.Or(rec.IP, "no address"))
		if err := e.writeHosts(s, env); err != nil {
			return err
		}
	}
	return e.waitDeps(ctx, env, s.DependsOn, out)
}

// startService starts svc's container and adds it to env's record.
func (e *Envs) startService(s *spec.Spec, svc *spec.Service, built *builder.Result, env *Env, out io.Writer) error {
	dir := e.dir(s.Name).Service(svc.Name)
	cfg, release, err := containerConfig(e.root, dir, built.Spec, built.Lower)
	if err != nil {
		return err
	}
	defer release()
	// A dot is in no environment's or service's name: web + api-db and
	// web-api + db are two containers.
	cfg.ID = "svc-" + s.Name + "." + svc.Name
	joinNet := 0
	if podNetwork(s) && len(env.Services) > 0 {
		anchor := env.Services[0]
		if !anchor.init().Alive() {
			return fmt.Errorf("the network its environment shares is %s's, which has exited", anchor.Name)
		}
		cfg.Network, joinNet = container.NetworkShared, anchor.Pid
	}
	if cfg.UserNS, err = e.upperUserNS(dir, s.Name, built.UserNS); err != nil {
		return err
	}
	sup, user, err := serviceProcess(svc, built)
	if err != nil {
		return err
	}
	if cfg.UserNS != nil && hasBinds(cfg.Mounts) {
		var warning string
		if cfg.Project, warning, err = projectTree(e.root, s.Dir, sup.Process.UID, sup.Process.GID); err != nil {
			return err
		}
		if warning != "" {
			printWarnings(out, []string{warning})
		}
	}
	if cfg.Service, err = e.serviceInit(sup, user); err != nil {
		return err
	}
	cfg.ServiceFiles = map[string]string{hostKeyFile: e.dir(s.Name).HostKey()}
	if err := os.WriteFile(dir.Alive(), nil, 0o400); err != nil {
		return err
	}
	cfg.Watch = dir.Alive()
	probe, _ := svc.Healthcheck.Probe()
	rec := &Service{Name: svc.Name, Aliases: svc.Aliases, Ports: built.Spec.PortMaps, Socket: dir.ExecSocket(), User: user, Grace: svc.Grace, Probe: probe}
	sock, err := listenUnix(rec.Socket)
	if err != nil {
		return fmt.Errorf("exec socket: %w", err)
	}
	defer sock.Close()
	logf, err := openLog(dir.Log(), svc.Name)
	if err != nil {
		return err
	}
	defer logf.Close()
	env.Services = append(env.Services, rec)
	env.Volumes = append(env.Volumes, volumeNames(built.Spec.Mounts)...)
	c, err := container.Start(container.Options{
		Config: cfg, JoinNet: joinNet, PortMaps: rec.Ports, Limits: built.Spec.Limits(), Subnet: s.Network.Subnet, Group: e.netGroup(s),
		ServiceListeners: []*os.File{sock}, Detach: true, Stdout: logf, Stderr: logf,
		Record: func(pid int, l container.Leftovers) error {
			rec.Pid, rec.PidStart, rec.Leftovers = pid, proc.StartTime(pid), l
			err := writeJSON(e.dir(s.Name).State(), env)
			if err == nil {
				release() // named in the record: a removal sees them in use
			}
			return err
		},
	})
	if err != nil {
		env.Services = env.Services[:len(env.Services)-1]
		return errors.Join(err, writeJSON(e.dir(s.Name).State(), env))
	}
	printWarnings(out, c.Warnings)
	rec.IP = c.IP
	rec.Leftovers = c.Detach()
	return writeJSON(e.dir(s.Name).State(), env)
}

// netGroup is the network group of s's containers when it has services:
// they reach each other, and no other environment's container reaches
// them. An environment without services keeps the bridge as it was.
func (e *Envs) netGroup(s *spec.Spec) string {
	if len(s.ServiceOrder) == 0 || podNetwork(s) {
		return ""
	}
	return e.root.Dir() + "\x00" + s.Name
}

// podNetwork says s's containers share one network namespace, as a pod's
// do: the first service's, which pasta connects, and each name is
// 127.0.0.1. So it is for an ordinary user, who cannot make a bridge for
// them to meet on (two services then cannot listen on one port).
func podNetwork(s *spec.Spec) bool {
	_, ok := rootless.Active()
	return ok && len(s.ServiceOrder) > 0
}

// serviceProcess is svc's main process as compose runs it, and the name
// its exec sessions log in as: its user if the image names it, else root.
func serviceProcess(svc *spec.Service, built *builder.Result) (*supervised, string, error) {
	img := built.Image.Config
	user := cmp.Or(svc.User, img.User)
	uid, gid, err := builder.LookupUser(built.Lower, user)
	if err != nil {
		return nil, "", fmt.Errorf("user: %w", err)
	}
	args := composeArgs(svc.Entrypoint, svc.Command, img)
	if len(args) == 0 {
		return nil, "", errors.New("no command: the service has none, nor does its image")
	}
	sup := &supervised{
		Process: container.Process{
			Args: args,
			Env:  built.Spec.Environ(img, "HOSTNAME="+svc.Name, "HOME="+runHome(img, built.Lower, uid)),
			Cwd:  cmp.Or(svc.WorkingDir, img.WorkingDir, "/"),
			UID:  uid, GID: gid,
			Groups: builder.SupplementaryGroups(built.Lower, user),
		},
		Restart: svc.Restart, MaxRestarts: svc.MaxRestarts, Grace: svc.Grace,
		StopSignal: int(spec.StopSignal(cmp.Or(svc.StopSignal, "SIGTERM"))),
	}
	if user == "" || user[0] >= '0' && user[0] <= '9' {
		user = "root" // a uid with no name: exec as root, as the server needs a name
	}
	return sup, user, nil
}

// composeArgs is a container's argv as compose makes it: an entrypoint
// drops the image's command, a command replaces it.
func composeArgs(entrypoint, command []string, img rootfs.Config) []string {
	if len(entrypoint) > 0 {
		return slices.Concat(entrypoint, command)
	}
	if len(command) == 0 {
		command = img.Cmd
	}
	return slices.Concat(img.Entrypoint, command)
}

// serviceInit is the configuration of a service's init: the supervised
// process, and an SSH server for devbox's own key only, on the exec
// socket only, with no forwarding.
func (e *Envs) serviceInit(sup *supervised, user string) ([]byte, error) {
	clientKey, err := ensureKey(e.ClientKeyPath())
	if err != nil {
		return nil, err
	}
	return json.Marshal(initConfig{
		Config: sshd.Config{
			User:           user,
			AuthorizedKeys: []string{string(gossh.MarshalAuthorizedKey(clientKey.PublicKey()))},
			Env:            sup.Process.Env, Workdir: sup.Process.Cwd,
			// A service's user often has nologin for its shell (redis,
			// postgres): docker exec does not ask it, nor does this.
			Shell:        "/bin/sh",
			NoForwarding: true, NoAgentForwarding: true,
		},
		Supervise: sup,
	})
}

// writeHosts gives the environment and each of its started services an
// /etc/hosts that names every service. The files are rewritten in place:
// a running container has them bound by inode.
func (e *Envs) writeHosts(s *spec.Spec, env *Env) error {
	write := func(dir interface{ File(string) string }, hostname, more string) error {
		for _, svc := range env.Services {
			names := strings.Join(append([]string{svc.Name}, svc.Aliases...), " ")
			switch {
			case svc.Name == hostname:
			case podNetwork(s):
				more += "127.0.0.1\t" + names + "\n"
			case svc.IP != "":
				more += svc.IP + "\t" + names + "\n"
			}
		}
		return os.WriteFile(dir.File("hosts"), hostsFile(hostname, more), 0o644)
	}
	envLine := ""
	if addr := envAddr(s, env); addr != "" {
		envLine = addr + "\t" + strings.Join(append([]string{s.Hostname}, s.Aliases...), " ") + "\n"
	}
	for _, svc := range env.Services {
		if err := write(e.dir(s.Name).Service(svc.Name), svc.Name, envLine); err != nil {
			return err
		}
	}
	if _, err := os.Stat(e.dir(s.Name).File("hosts")); err != nil {
		return nil // the environment's own comes with its container
	}
	return write(e.dir(s.Name), s.Hostname, "")
}

// envAddr is where s's services find the environment, once it runs: its
// own address, the one of the service whose network it shares, or the
// pod's loopback.
func envAddr(s *spec.Spec, env *Env) string {
	switch {
	case podNetwork(s):
		return "127.0.0.1"
	case s.NetworkService() != "":
		if svc := env.service(s.NetworkService()); svc != nil {
			return svc.IP
		}
	}
	return env.IP
}

// stopServices stops env's services, the last started first: SIGTERM to
// each init (its supervisor gives the main process its stop signal and
// grace period), SIGKILL after that; then what each held is released.
func (e *Envs) stopServices(env *Env) {
	for _, svc := range slices.Backward(env.Services) {
		// The init's own stop waits out the grace period first.
		stopInit(svc.init(), svc.Grace+2*time.Second)
		container.Reclaim(svc.Leftovers)
		os.Remove(svc.Socket)
	}
	env.Services = nil
}
