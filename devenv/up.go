package devenv

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devbox/devbox/devenv/builder"
	"github.com/devbox/devbox/devenv/kube"
	"github.com/devbox/devbox/devenv/portable"
	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/internal/proc"
	"github.com/devbox/devbox/rootfs"
	container "github.com/devbox/devbox/runtime"
	"github.com/devbox/devbox/sshd"
)

// UpOptions are what `devbox up` takes besides the spec.
type UpOptions struct {
	Build builder.Options
}

// ErrRunning says an environment was already running.
var ErrRunning = errors.New("already running")

// Up starts the spec's environment and returns once its SSH server
// answers. If it is already running, Up returns its record and ErrRunning.
func (e *Envs) Up(ctx context.Context, store *rootfs.Store, s *spec.Spec, o UpOptions) (*Env, error) {
	container.WarmCgroupMoves()
	unlock, err := e.lock(s.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	sweepRuns(e.root.Runs()) // what killed one-shot containers left
	if env, err := e.get(s.Name, true); err == nil && env.Status == "running" {
		return env, ErrRunning
	} else if err == nil && env.Status == "starting" {
		e.stop(env, time.Second) // what a killed up started
	}
	built, err := builder.Run(ctx, store, s, o.Build)
	if err != nil {
		return nil, err
	}
	s = built.Spec // merged over the image's devcontainer.metadata
	hostKey, err := ensureKey(e.dir(s.Name).HostKey())
	if err != nil {
		return nil, err
	}
	if err := writeTitle(e.dir(s.Name).File(titleFile), s.Title); err != nil {
		return nil, err
	}
	env := &Env{
		Name: s.Name, Title: s.Title, Spec: s.File, Base: s.Base, Started: time.Now().UTC(), User: s.SSH.User,
		SSHAddress: s.SSH.Address, SSHPort: s.SSH.Port, Ports: s.PortMaps, Status: "running",
		Socket: e.root.Socket(s.Name), Volumes: volumeNames(s.Mounts),
	}
	services, err := e.upServices(ctx, store, s, env, o)
	if err != nil {
		e.stop(env, time.Second)
		return nil, fmt.Errorf("up %s: %w", s.Name, err)
	}
	opts, closeFiles, releaseVolumes, err := e.upOptions(s, env, built, o.Build.Out)
	if err == nil {
		err = e.writeHosts(s, env)
	}
	if err != nil {
		e.stop(env, time.Second)
		return nil, err
	}
	defer closeFiles()
	defer releaseVolumes()
	// The record is written before the init may run anything, so that a
	// devbox killed at any point leaves no container the next command
	// cannot find and stop.
	opts.Record = func(pid int, l container.Leftovers) error {
		env.Pid, env.PidStart, env.Leftovers = pid, proc.StartTime(pid), l
		err := writeJSON(e.dir(s.Name).State(), env)
		if err == nil {
			releaseVolumes() // named in the record: a removal sees them in use
		}
		return err
	}
	c, err := container.Start(opts)
	if err != nil {
		e.stop(env, time.Second) // its services, its record
		return nil, fmt.Errorf("up %s: %w", s.Name, err)
	}
	printWarnings(o.Build.Out, c.Warnings)
	env.IP = c.IP
	env.Leftovers = c.Detach()
	if err := e.record(env, s, built, hostKey.PublicKey(), services); err != nil {
		e.stop(env, time.Second)
		return nil, err
	}
	if err := waitBanner(dialAddr(s.SSH.Address, s.SSH.Port), 5*time.Second); err != nil {
		e.stop(env, time.Second)
		return nil, fmt.Errorf("up %s: the SSH server does not answer: %w (see %s)", s.Name, err, e.LogPath(s.Name))
	}
	out := o.Build.Out
	if out == nil {
		out = io.Discard
	}
	if err := e.runLifecycle(env, s, out); err != nil {
		e.stop(env, time.Second)
		return nil, fmt.Errorf("up %s: %w", s.Name, err)
	}
	return env, nil
}

// upOptions prepares everything the container of an environment needs on
// the host: its directories and files, the SSH server's configuration, the
// sockets it serves (the published SSH port, the exec socket) and its log.
// closeFiles closes our copies once the init has its own; releaseVolumes
// gives back the volumes' locks once the record names them (it may be
// called again).
func (e *Envs) upOptions(s *spec.Spec, env *Env, built *builder.Result, out io.Writer) (o container.Options, closeFiles, releaseVolumes func(), err error) {
	dir := e.dir(s.Name)
	clientKey, err := ensureKey(e.ClientKeyPath())
	if err != nil {
		return o, nil, nil, err
	}
	service, err := serviceConfig(s, built, clientKey, out)
	if err != nil {
		return o, nil, nil, err
	}
	cfg, release, err := containerConfig(e.root, dir, s, built.Lower)
	if err != nil {
		return o, nil, nil, err
	}
	releaseVolumes = sync.OnceFunc(release)
	defer func() {
		if err != nil {
			releaseVolumes()
		}
	}()
	cfg.ID = "env-" + s.Name
	if cfg.UserNS, err = e.envUserNS(s.Name, built.UserNS); err != nil {
		return o, nil, nil, err
	}
	if cfg.UserNS != nil && hasBinds(cfg.Mounts) {
		uid, gid, err := lookupUser(built.Lower, s.SSH.User)
		if err != nil {
			return o, nil, nil, err
		}
		var warning string
		if cfg.Project, warning, err = projectTree(e.root, s.Dir, uid, gid); err != nil {
			return o, nil, nil, err
		}
		if warning != "" {
			printWarnings(out, []string{warning})
		}
	}
	cfg.Service = service
	cfg.ServiceFiles = map[string]string{hostKeyFile: dir.HostKey()}
	// No process outlives its state: the init stops when this goes.
	if err := os.WriteFile(dir.Alive(), nil, 0o400); err != nil {
		return o, nil, nil, err
	}
	cfg.Watch = dir.Alive()

	joinNet, err := sharedNet(s, env)
	if err != nil {
		return o, nil, nil, err
	}
	files, closeFiles, err := e.upFiles(s)
	if err != nil {
		return o, nil, nil, err
	}
	return container.Options{
		Config:           cfg,
		JoinNet:          joinNet,
		PortMaps:         s.PortMaps,
		Limits:           s.Limits(),
		Subnet:           s.Network.Subnet,
		Group:            e.netGroup(s),
		ServiceListeners: files[:2],
		Detach:           true,
		Stdout:           files[2],
		Stderr:           files[2],
	}, closeFiles, releaseVolumes, nil
}

// upFiles are the listening SSH port (a published port the init serves
// itself), the exec socket and the log, in that order.
func (e *Envs) upFiles(s *spec.Spec) (files []*os.File, closeFiles func(), err error) {
	closeFiles = func() {
		for _, f := range files {
			f.Close()
		}
	}
	tcp, err := listenFile("tcp", net.JoinHostPort(s.SSH.Address, strconv.Itoa(s.SSH.Port)))
	if err != nil {
		return nil, nil, fmt.Errorf("ssh port: %w", err)
	}
	files = append(files, tcp)
	unixSock, err := listenUnix(e.root.Socket(s.Name))
	if err != nil {
		closeFiles()
		return nil, nil, fmt.Errorf("exec socket: %w", err)
	}
	files = append(files, unixSock)
	logf, err := openLog(e.dir(s.Name).Log(), s.Name)
	if err != nil {
		closeFiles()
		return nil, nil, err
	}
	return append(files, logf), closeFiles, nil
}

// sharedNet is the init pid of the service whose network s's container
// shares, or 0.
func sharedNet(s *spec.Spec, env *Env) (int, error) {
	name := s.NetworkService()
	if name == "" && podNetwork(s) {
		name = env.Services[0].Name
	}
	if name == "" {
		return 0, nil
	}
	svc := env.service(name)
	if svc == nil || !svc.init().Alive() {
		return 0, fmt.Errorf("network: service %s is not running", name)
	}
	return svc.Pid, nil
}

// openLog opens an environment's log for its init, after a line that
// says who starts it.
func openLog(path, name string) (*os.File, error) {
	// Readable too: a service's init keeps it under its cap (cappedLog).
	logf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "%s devbox up: starting %s\n", time.Now().UTC().Format(time.RFC3339), name)
	return logf, nil
}

// record writes what a running environment is known by: what push
// publishes (its build and config), its state, the volumes it mounts (for
// rm --volumes) and its pinned host key.
func (e *Envs) record(env *Env, s *spec.Spec, built *builder.Result, hostKey gossh.PublicKey, services []kube.Service) error {
	dir := e.dir(s.Name)
	img := built.Image.Config
	ssh := portableConfig(s, img)
	var ports []int
	for _, p := range s.PortMaps {
		// The image's SSH server has port 22 to itself.
		if p.ContainerPort != portable.SSHPort {
			ports = append(ports, p.ContainerPort)
		}
	}
	slices.Sort(ports)
	ports = slices.Compact(ports)
	if err := writeJSON(dir.Image(), &builtImage{
		Lower: built.Lower,
		Config: rootfs.Config{Env: s.Environ(img), WorkingDir: s.StartDir(img), User: img.User, Cmd: img.Cmd,
			Labels: metadataLabel(img.Labels)},
		SSH:   &ssh,
		Ports: ports,
		Password: s.PasswordFingerprint() != "none" ||
			(s.SSH.ImageLogins != nil && *s.SSH.ImageLogins),
		Services: services,
	}); err != nil {
		return err
	}
	if err := writeJSON(dir.State(), env); err != nil {
		return err
	}
	if err := writeJSON(dir.VolumeList(), env.Volumes); err != nil {
		return err
	}
	if len(env.Services) > 0 && env.Pid != 0 {
		// Now it has an address: its services learn it.
		if err := e.writeHosts(s, env); err != nil {
			return err
		}
	}
	return writeKnownHosts(dir.KnownHosts(), hostKey, s.SSH)
}

// serviceConfig is the init's configuration for spec s: the SSH
// server's (the image's, portableConfig, devbox's own client key and the
// password) and the process s runs beside it, if any.
func serviceConfig(s *spec.Spec, built *builder.Result, client gossh.Signer, out io.Writer) ([]byte, error) {
	img := built.Image
	cfg := portableConfig(s, img.Config)
	cfg.AuthorizedKeys = append([]string{string(gossh.MarshalAuthorizedKey(client.PublicKey()))}, cfg.AuthorizedKeys...)
	cfg.Env = s.Environ(img.Config, s.UpEnv()...)
	cfg.Attach = attachScript(s.Lifecycle.PostAttach)
	var err error
	if cfg.PasswordHash, err = s.PasswordHash(); err != nil {
		return nil, err
	}
	if s.SSH.ImageLogins != nil && *s.SSH.ImageLogins {
		keys, hash, note, err := imageLogins(built.Lower, s.SSH.User)
		if err != nil {
			return nil, err
		}
		if note != "" && out != nil {
			fmt.Fprintf(out, "warning: %s\n", note)
		}
		cfg.AuthorizedKeys = append(cfg.AuthorizedKeys, keys...)
		if cfg.PasswordHash == "" {
			cfg.PasswordHash = hash
		}
		if out != nil {
			pw := ""
			if hash != "" && cfg.PasswordHash == hash {
				pw = " and its password in /etc/shadow"
			}
			fmt.Fprintf(out, "ssh: image_logins: %s may also log in as the image sets up: %d key(s) from its authorized_keys%s\n", s.SSH.User, len(keys), pw)
		}
	}
	beside, err := besideProcess(s, built)
	if err != nil {
		return nil, err
	}
	return json.Marshal(initConfig{Config: cfg, Supervise: beside})
}

// loginDir is where sessions start: the spec's workdir, else the image's
// (a Dockerfile's WORKDIR, as docker exec starts there), else the user's
// home.
func loginDir(s *spec.Spec, img rootfs.Config) string {
	if s.Workdir == "" && (img.WorkingDir == "" || img.WorkingDir == "/") {
		return ""
	}
	return s.StartDir(img)
}

// portableConfig is the SSH server's configuration that may go into an
// image: no password, no token, no key of this host's.
func portableConfig(s *spec.Spec, img rootfs.Config) sshd.Config {
	return sshd.Config{
		User:           s.SSH.User,
		AuthorizedKeys: s.SSH.Keys,
		Env:            s.Environ(img),
		Workdir:        loginDir(s, img),
		Shell:          s.Shell,
		// Off only when the spec says false.
		NoForwarding:      s.SSH.Forwarding != nil && !*s.SSH.Forwarding,
		NoAgentForwarding: s.SSH.AgentForwarding != nil && !*s.SSH.AgentForwarding,
	}
}

// listenUnix listens on a fresh socket at p, making its directory.
func listenUnix(p string) (*os.File, error) {
	os.Remove(p)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	return listenFile("unix", p)
}

func listenFile(network, addr string) (*os.File, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	switch l := ln.(type) {
	case *net.TCPListener:
		return l.File()
	case *net.UnixListener:
		l.SetUnlinkOnClose(false)
		f, err := l.File()
		if err == nil {
			err = os.Chmod(addr, 0o600) // only host root may exec
		}
		return f, err
	}
	return nil, fmt.Errorf("unexpected listener %T", ln)
}

// waitBanner waits until addr answers with an SSH identification line.
func waitBanner(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && strings.HasPrefix(line, "SSH-2.0-") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no SSH banner on %s: %v", addr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// builtImage is envs/NAME/image.json: the layers (top first) and config
// of the environment's last build.
type builtImage struct {
	Lower  []string      `json:"lower"`
	Config rootfs.Config `json:"config"`
	// SSH is the server's configuration fit for an image, and Ports the
	// spec's container ports: what push adds to make the image portable.
	// Records written before push did so have neither.
	SSH   *sshd.Config `json:"ssh,omitempty"`
	Ports []int        `json:"ports,omitempty"`
	// Password says the login's password is the crypt hash in the
	// build's /etc/shadow (the spec's, or the image's with image_logins):
	// push leaves it out of the image, kube puts it in the Secret.
	Password bool `json:"password,omitempty"`
	// Services are the environment's services, as kube writes them.
	Services []kube.Service `json:"services,omitempty"`
}

// writeTitle records title at path, or removes a stale one.
func writeTitle(path, title string) error {
	if title == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return os.WriteFile(path, []byte(title), 0o600)
}

// metadataLabel is the Dev Container metadata label of labels alone, or
// none.
func metadataLabel(labels map[string]string) map[string]string {
	if v, ok := labels[spec.MetadataLabel]; ok {
		return map[string]string{spec.MetadataLabel: v}
	}
	return nil
}
