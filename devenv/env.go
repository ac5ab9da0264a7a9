package devenv

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/GehirnInc/crypt"
	_ "github.com/GehirnInc/crypt/sha512_crypt" // $6$ for password hashes
	gossh "golang.org/x/crypto/ssh"

	"github.com/devbox/devbox/rootfs"
	"github.com/devbox/devbox/runtime"
	"github.com/devbox/devbox/sshd"
)

// Env is an environment's record: envs/NAME/state.json while it runs.
type Env struct {
	Name       string            `json:"name"`
	Spec       string            `json:"spec"`
	Base       string            `json:"base"`
	Pid        int               `json:"pid"`
	PidStart   uint64            `json:"pid_start"`
	Started    time.Time         `json:"started"`
	User       string            `json:"user"`
	SSHAddress string            `json:"ssh_address"`
	SSHPort    int               `json:"ssh_port"`
	Ports      []PortMap         `json:"ports"`
	IP         string            `json:"ip,omitempty"`
	Leftovers  runtime.Leftovers `json:"leftovers"`
	// Status is derived, never stored: running or stopped.
	Status string `json:"status"`
}

// Envs is the environments part of the state root.
type Envs struct {
	root string // the state root
}

// NewEnvs returns the environments under state root root.
func NewEnvs(root string) *Envs { return &Envs{root: root} }

// Dir is an environment's directory: its writable layer, host key, state
// and log.
func (e *Envs) Dir(name string) string { return filepath.Join(e.root, "envs", name) }

func (e *Envs) statePath(name string) string { return filepath.Join(e.Dir(name), "state.json") }

// ClientKeyPath is devbox's own SSH key, which every environment accepts.
func (e *Envs) ClientKeyPath() string { return filepath.Join(e.root, "client_key") }

// SocketPath is the Unix socket on which an environment serves SSH to
// devbox exec; only host root can open it.
func (e *Envs) SocketPath(name string) string { return filepath.Join(e.Dir(name), "ssh.sock") }

// KnownHostsPath pins an environment's host key for OpenSSH clients.
func (e *Envs) KnownHostsPath(name string) string { return filepath.Join(e.Dir(name), "known_hosts") }

// lock serialises lifecycle commands on one environment.
func (e *Envs) lock(name string) (func(), error) {
	if err := os.MkdirAll(e.Dir(name), 0o700); err != nil {
		return nil, err
	}
	return runtime.Lock(filepath.Join(e.Dir(name), "lock"))
}

// Get returns an environment's record, reconciled with reality: an init
// that died (or a pid now used by another process) makes it stopped, and
// what the dead container left is cleaned up.
func (e *Envs) Get(name string) (*Env, error) {
	if _, err := os.Stat(e.Dir(name)); err != nil {
		return nil, fmt.Errorf("no environment %q", name)
	}
	var env Env
	data, err := os.ReadFile(e.statePath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return &Env{Name: name, Status: "stopped"}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%s: %w", e.statePath(name), err)
	}
	if env.PidStart != 0 && runtime.ProcessStart(env.Pid) == env.PidStart {
		env.Status = "running"
		return &env, nil
	}
	e.reclaim(&env)
	env.Status, env.Pid = "stopped", 0
	return &env, nil
}

func (e *Envs) reclaim(env *Env) {
	runtime.Reclaim(e.root, env.Leftovers)
	os.Remove(e.statePath(env.Name))
	os.Remove(e.SocketPath(env.Name))
}

// List returns every environment, by name.
func (e *Envs) List() ([]*Env, error) {
	entries, err := os.ReadDir(filepath.Join(e.root, "envs"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Env
	for _, d := range entries {
		if !d.IsDir() {
			continue
		}
		env, err := e.Get(d.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, env)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// UpOptions are what `devbox up` takes besides the spec.
type UpOptions struct {
	Build BuildOptions
}

// ErrRunning says an environment was already running.
var ErrRunning = errors.New("already running")

// Up starts the spec's environment and returns once its SSH server
// answers. If it is already running, Up returns its record and ErrRunning.
func (e *Envs) Up(ctx context.Context, store *rootfs.Store, s *Spec, o UpOptions) (*Env, error) {
	unlock, err := e.lock(s.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if env, err := e.Get(s.Name); err == nil && env.Status == "running" {
		return env, ErrRunning
	}
	built, err := Build(ctx, store, s, o.Build)
	if err != nil {
		return nil, err
	}
	img := built.Image
	dir := e.Dir(s.Name)
	hostKey, err := ensureKey(filepath.Join(dir, "host_key"))
	if err != nil {
		return nil, err
	}
	clientKey, err := ensureKey(e.ClientKeyPath())
	if err != nil {
		return nil, err
	}
	service, err := e.serviceConfig(s, img, clientKey)
	if err != nil {
		return nil, err
	}
	cfg, err := containerDirs(dir, s)
	if err != nil {
		return nil, err
	}
	cfg.ID = "env-" + s.Name
	cfg.Lower = built.Lower
	cfg.Service = service
	cfg.ServiceFiles = map[string]string{sshd.HostKeyFile: filepath.Join(dir, "host_key")}

	// The SSH port is a published port the init serves itself.
	sshAddr := net.JoinHostPort(s.SSH.Address, strconv.Itoa(s.SSH.Port))
	tcp, err := listenFile("tcp", sshAddr)
	if err != nil {
		return nil, fmt.Errorf("ssh port: %w", err)
	}
	defer tcp.Close()
	os.Remove(e.SocketPath(s.Name))
	unixSock, err := listenFile("unix", e.SocketPath(s.Name))
	if err != nil {
		return nil, fmt.Errorf("exec socket: %w", err)
	}
	defer unixSock.Close()
	if err := os.Chmod(e.SocketPath(s.Name), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "%s devbox up: starting %s\n", time.Now().UTC().Format(time.RFC3339), s.Name)

	c, err := runtime.Start(runtime.Options{
		Config:           cfg,
		PortMaps:         portMaps(s),
		Limits:           limits(s),
		StateRoot:        e.root,
		Subnet:           s.Network.Subnet,
		ServiceListeners: []*os.File{tcp, unixSock},
		Detach:           true,
		Stdout:           logf,
		Stderr:           logf,
	})
	if err != nil {
		return nil, fmt.Errorf("up %s: %w", s.Name, err)
	}
	env := &Env{
		Name: s.Name, Spec: s.File, Base: s.Base, Pid: c.Pid, PidStart: runtime.ProcessStart(c.Pid),
		Started: time.Now().UTC(), User: s.SSH.User, SSHAddress: s.SSH.Address, SSHPort: s.SSH.Port,
		Ports: s.PortMaps, IP: c.IP, Status: "running",
	}
	env.Leftovers = c.Detach()
	// What push publishes: the build's layers and the environment's config.
	if err := writeState(filepath.Join(dir, "image.json"), &builtImage{
		Lower:  built.Lower,
		Config: rootfs.Config{Env: Environ(s, img), WorkingDir: Workdir(s, img), User: img.Config.User, Cmd: img.Config.Cmd},
	}); err != nil {
		return nil, err
	}
	if err := writeState(e.statePath(s.Name), env); err != nil {
		e.stop(env, time.Second)
		return nil, err
	}
	if err := writeKnownHosts(e.KnownHostsPath(s.Name), hostKey.PublicKey(), s.SSH); err != nil {
		return nil, err
	}
	if err := waitBanner(dialAddr(s.SSH.Address, s.SSH.Port), 5*time.Second); err != nil {
		e.stop(env, time.Second)
		return nil, fmt.Errorf("up %s: the SSH server does not answer: %w (see %s)", s.Name, err, filepath.Join(dir, "log"))
	}
	return env, nil
}

// serviceConfig is the SSH server's configuration for spec s.
func (e *Envs) serviceConfig(s *Spec, img *rootfs.Image, client gossh.Signer) ([]byte, error) {
	keys := append([]string{string(gossh.MarshalAuthorizedKey(client.PublicKey()))}, s.SSH.Keys...)
	hash := s.SSH.PasswordHash
	if pw := s.Password(); hash == "" && pw != "" {
		var err error
		if hash, err = HashPassword(pw); err != nil {
			return nil, err
		}
	}
	return json.Marshal(sshd.Config{
		User:           s.SSH.User,
		AuthorizedKeys: keys,
		PasswordHash:   hash,
		Env:            Environ(s, img, s.upEnv()...),
		Workdir:        s.Workdir,
		Shell:          s.Shell,
	})
}

// HashPassword makes a sha512-crypt hash (the form /etc/shadow uses).
func HashPassword(pw string) (string, error) {
	salt := make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	const alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	for i := range salt {
		salt[i] = alphabet[int(salt[i])%len(alphabet)]
	}
	return crypt.SHA512.New().Generate([]byte(pw), append([]byte("$6$"), salt...))
}

// ensureKey loads the ed25519 key at path, making it (0600) if missing.
// Host keys are made once per environment and kept across down/up and
// rebuilds, so that clients never see the host key change.
func ensureKey(path string) (gossh.Signer, error) {
	if data, err := os.ReadFile(path); err == nil {
		return gossh.ParsePrivateKey(data)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "devbox")
	if err != nil {
		return nil, err
	}
	data := pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return nil, err
	}
	signer, err := gossh.ParsePrivateKey(data)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+".pub", gossh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		return nil, err
	}
	return signer, os.Rename(tmp, path)
}

func writeKnownHosts(path string, key gossh.PublicKey, c SSH) error {
	var lines []string
	for _, host := range []string{dialHost(c.Address), "localhost"} {
		lines = append(lines, knownHostsLine(host, c.Port, key))
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644)
}

func knownHostsLine(host string, port int, key gossh.PublicKey) string {
	h := host
	if port != 22 {
		h = fmt.Sprintf("[%s]:%d", host, port)
	}
	return h + " " + string(gossh.MarshalAuthorizedKey(key))
}

// dialHost is where to reach a server bound to address.
func dialHost(address string) string {
	if ip := net.ParseIP(address); ip == nil || ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return address
}

func dialAddr(address string, port int) string {
	return net.JoinHostPort(dialHost(address), strconv.Itoa(port))
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
		return l.File()
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
}

// Push publishes an environment's build as an OCI image at ref. Its
// writable layer is not included: the image is what the spec builds.
func (e *Envs) Push(ctx context.Context, name, ref string, insecure bool) (string, error) {
	data, err := os.ReadFile(filepath.Join(e.Dir(name), "image.json"))
	if err != nil {
		return "", fmt.Errorf("push %s: not built here yet (devbox up): %w", name, err)
	}
	var bi builtImage
	if err := json.Unmarshal(data, &bi); err != nil {
		return "", err
	}
	bottomFirst := slices.Clone(bi.Lower)
	slices.Reverse(bottomFirst)
	d, err := rootfs.Push(ctx, bottomFirst, bi.Config, ref, insecure)
	return d.String(), err
}

func writeState(path string, env any) error {
	data, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Down stops an environment: SIGTERM to its init (which closes the
// sessions), SIGKILL after timeout; then what the container held on the
// host is released. Its writable layer and host key stay.
func (e *Envs) Down(name string, timeout time.Duration) (*Env, error) {
	unlock, err := e.lock(name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	env, err := e.Get(name)
	if err != nil {
		return nil, err
	}
	if env.Status != "running" {
		return env, nil
	}
	e.stop(env, timeout)
	env.Status = "stopped"
	return env, nil
}

func (e *Envs) stop(env *Env, timeout time.Duration) {
	alive := func() bool { return runtime.ProcessStart(env.Pid) == env.PidStart }
	if alive() {
		syscall.Kill(env.Pid, syscall.SIGTERM)
		for deadline := time.Now().Add(timeout); alive() && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if alive() {
			syscall.Kill(env.Pid, syscall.SIGKILL)
			for i := 0; i < 500 && alive(); i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	e.reclaim(env)
}

// Rm stops an environment and deletes it: writable layer, host key, log.
func (e *Envs) Rm(name string, timeout time.Duration) error {
	if _, err := e.Down(name, timeout); err != nil {
		return err
	}
	return os.RemoveAll(e.Dir(name))
}
