package devenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/devenv/volume"
	"github.com/devbox/devbox/internal/lockfile"
	"github.com/devbox/devbox/internal/proc"
	"github.com/devbox/devbox/internal/state"
	"github.com/devbox/devbox/internal/subid"
	container "github.com/devbox/devbox/runtime"
)

// Env is an environment's record: envs/NAME/state.json while it runs.
type Env struct {
	Name       string              `json:"name"`
	Spec       string              `json:"spec"`
	Base       string              `json:"base"`
	Pid        int                 `json:"pid"`
	PidStart   uint64              `json:"pid_start"`
	Started    time.Time           `json:"started"`
	User       string              `json:"user"`
	SSHAddress string              `json:"ssh_address"`
	SSHPort    int                 `json:"ssh_port"`
	Ports      []container.PortMap `json:"ports"`
	IP         string              `json:"ip,omitempty"`
	Leftovers  container.Leftovers `json:"leftovers"`
	// Socket is the exec socket, where up made it: a later command's
	// runtime directory may differ (su, cron; see state.Root.Socket).
	Socket string `json:"socket,omitempty"`
	// Title is a devcontainer.json's "name", by which it is found too.
	Title string `json:"title,omitempty"`
	// Volumes are the named volumes it mounts: not removed while it runs.
	Volumes []string `json:"volumes,omitempty"`
	// Services are its services' containers, in the order they started.
	Services []*Service `json:"services,omitempty"`
	// Status is derived, never stored: running, stopped, or starting
	// (an up is starting its services, or was killed doing so).
	Status string `json:"status"`
}

// init is the environment's init process.
func (env *Env) init() proc.ID { return proc.ID{Pid: env.Pid, Start: env.PidStart} }

// Envs is the environments of a state root.
type Envs struct {
	root state.Root
}

// NewEnvs returns the environments under state root root.
func NewEnvs(root string) *Envs { return &Envs{root: state.Root(root)} }

// DefaultStateRoot is where devbox keeps layers, builds and environments.
func DefaultStateRoot() string { return state.DefaultRoot().Dir() }

func (e *Envs) dir(name string) state.Env { return e.root.Env(name) }

// ClientKeyPath is devbox's own SSH key, which every environment accepts.
func (e *Envs) ClientKeyPath() string { return e.root.ClientKey() }

// KnownHostsPath pins an environment's host key for OpenSSH clients.
func (e *Envs) KnownHostsPath(name string) string { return e.dir(name).KnownHosts() }

// LogPath is the log of an environment's init and SSH server.
func (e *Envs) LogPath(name string) string { return e.dir(name).Log() }

// lock serialises lifecycle commands on one environment. Names from the
// command line are checked here and in Get, before any path is made of
// them.
func (e *Envs) lock(name string) (func(), error) {
	if err := spec.CheckName(name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(e.dir(name).Dir(), 0o700); err != nil {
		return nil, err
	}
	return lockfile.Lock(e.dir(name).Lock())
}

// titleFile holds an environment's title (a devcontainer.json's "name")
// from its first up to its rm, across downs.
const titleFile = "title"

// Resolve is the name of the environment called name: its own name, or
// the title of exactly one (a devcontainer.json's "name", which need not
// be a valid environment name).
func (e *Envs) Resolve(name string) (string, error) {
	if spec.CheckName(name) == nil {
		if _, err := os.Stat(e.dir(name).Dir()); err == nil {
			return name, nil
		}
	}
	entries, err := os.ReadDir(e.root.Envs())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var found []string
	for _, d := range entries {
		if !d.IsDir() || spec.CheckName(d.Name()) != nil {
			continue
		}
		if t, err := os.ReadFile(e.dir(d.Name()).File(titleFile)); err == nil && string(t) == name {
			found = append(found, d.Name())
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no environment %q", name)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%q is the name of several environments (%s): use one of theirs", name, strings.Join(found, ", "))
}

// Get returns an environment's record, reconciled with reality: an init
// that died (or a pid now used by another process) makes it stopped, and
// what the dead container left is cleaned up.
func (e *Envs) Get(name string) (*Env, error) { return e.get(name, false) }

// get is Get; locked says the caller holds the environment's lock. A
// dead environment's leftovers are reclaimed by the holder of its lock
// only: an up or down at work on it does it itself, and a ps must not
// stop the services a concurrent up has just recorded.
func (e *Envs) get(name string, locked bool) (*Env, error) {
	if err := spec.CheckName(name); err != nil {
		return nil, err
	}
	if _, err := os.Stat(e.dir(name).Dir()); err != nil {
		return nil, fmt.Errorf("no environment %q", name)
	}
	var env Env
	data, err := os.ReadFile(e.dir(name).State())
	title, _ := os.ReadFile(e.dir(name).File(titleFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &Env{Name: name, Title: string(title), Status: "stopped"}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%s: %w", e.dir(name).State(), err)
	}
	env.Title = string(title)
	for _, svc := range env.Services {
		svc.Status = "exited"
		if svc.init().Alive() {
			svc.Status = "running"
		}
	}
	if env.init().Alive() {
		env.Status = "running"
		return &env, nil
	}
	if env.Pid == 0 && len(env.Services) > 0 {
		// An up starts the services first: it is at it, or was killed
		// (the next up or down stops what it started).
		env.Status = "starting"
		return &env, nil
	}
	if locked {
		e.reclaim(&env)
	} else if l, err := lockfile.Open(e.dir(name).Lock()); err == nil {
		if l.TryExclusive() {
			e.reclaim(&env)
		}
		l.Close()
	}
	env.Status, env.Pid = "stopped", 0
	return &env, nil
}

func (e *Envs) reclaim(env *Env) {
	e.stopServices(env)
	container.Reclaim(env.Leftovers)
	os.Remove(e.dir(env.Name).State())
	os.Remove(e.socket(env))
}

// socket is env's exec socket: where up made it, or, in a record from
// before that was kept, where it would be now.
func (e *Envs) socket(env *Env) string {
	if env.Socket != "" {
		return env.Socket
	}
	return e.root.Socket(env.Name)
}

// List returns every environment, by name. Like Get it reconciles: the
// one-shot containers whose devbox was killed (kill -9) give back what
// they held (address, bridge and nftables table when last, cgroups), so
// that a `devbox ps` after a killed `devbox run` leaves nothing behind.
func (e *Envs) List() ([]*Env, error) {
	sweepRuns(e.root.Runs())
	entries, err := os.ReadDir(e.root.Envs())
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

// Down stops an environment: SIGTERM to its init (which closes the
// sessions), SIGKILL after timeout; then what the container held on the
// host is released. Its writable layer and host key stay.
func (e *Envs) Down(name string, timeout time.Duration) (*Env, error) {
	unlock, err := e.lock(name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	env, err := e.get(name, true)
	if err != nil {
		return nil, err
	}
	if env.Status == "stopped" {
		return env, nil
	}
	e.stop(env, timeout)
	env.Status = "stopped"
	return env, nil
}

func (e *Envs) stop(env *Env, timeout time.Duration) {
	stopInit(env.init(), timeout)
	e.reclaim(env)
}

// stopInit stops a container's init: SIGTERM, SIGKILL after timeout,
// and waits (a little) for it to be gone.
func stopInit(init proc.ID, timeout time.Duration) {
	if !init.Alive() {
		return
	}
	syscall.Kill(init.Pid, syscall.SIGTERM)
	for deadline := time.Now().Add(timeout); init.Alive() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if init.Alive() {
		syscall.Kill(init.Pid, syscall.SIGKILL)
		for i := 0; i < 500 && init.Alive(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Rm stops an environment and deletes it: writable layers (its own and
// its services'), host key, logs. With volumes, the named volumes its
// last up mounted go too, as docker compose down --volumes removes the
// project's; one another environment mounts is kept, and said.
func (e *Envs) Rm(name string, timeout time.Duration, volumes bool) error {
	if _, err := e.Down(name, timeout); err != nil {
		return err
	}
	var names []string
	if data, err := os.ReadFile(e.dir(name).VolumeList()); err == nil {
		json.Unmarshal(data, &names)
	}
	if err := os.RemoveAll(e.dir(name).Dir()); err != nil {
		return err
	}
	if err := subid.New(e.root).ReleaseEnv(name); err != nil {
		return err
	}
	if !volumes {
		return nil
	}
	var errs []error
	for _, v := range slices.Compact(slices.Sorted(slices.Values(names))) {
		if err := e.RemoveVolume(v); err != nil && !errors.Is(err, volume.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeJSON writes v to path atomically.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
