// Package spec holds what a devbox.toml says: its types with their
// defaults, strict decoding (an unknown key, a wrong type or an invalid
// value is an *Error naming the file, line and key) and validation, and
// the views the rest of devbox derives from a spec (a process environment,
// limits, the npmrc, the password hash).
//
// A Spec is made by Load or Parse and not changed afterwards; the fields
// after the TOML ones are filled in by validation (paths made absolute,
// ports and sizes parsed, authorized keys read).
package spec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/devbox/devbox/rootfs"
	container "github.com/devbox/devbox/runtime"
)

// FileName is the spec's default file name.
const FileName = "devbox.toml"

// Spec is a decoded devbox.toml. The exported TOML fields are what the file
// says (with defaults filled in); the fields after them are derived by
// validation and are what the rest of devbox uses.
type Spec struct {
	Name      string            `toml:"name"`
	Base      string            `toml:"base"`
	Insecure  bool              `toml:"insecure"` // plain HTTP to a non-local registry
	Hostname  string            `toml:"hostname"`
	Workdir   string            `toml:"workdir"`
	Shell     string            `toml:"shell"`
	Ports     []string          `toml:"ports"`
	Env       map[string]string `toml:"env"`
	Packages  Packages          `toml:"packages"`
	Node      Node              `toml:"node"`
	NPM       NPM               `toml:"npm"`
	SSH       SSH               `toml:"ssh"`
	Mounts    []container.Mount `toml:"mounts"`
	Run       []RunStep         `toml:"run"`
	Resources Resources         `toml:"resources"`
	Network   Network           `toml:"network"`
	Security  Security          `toml:"security"`
	Cache     Cache             `toml:"cache"`
	// Dockerfile tunes a base = "dockerfile:PATH".
	Dockerfile Dockerfile `toml:"dockerfile"`
	// Services are containers beside the environment ([services.NAME]);
	// DependsOn says which the environment waits for, and how, as a
	// service's depends_on does (all are started before it anyway).
	Services  map[string]*Service `toml:"services,omitempty"`
	DependsOn DependsOn           `toml:"depends_on,omitempty"`
	// Entrypoint and Command are a process the environment runs beside
	// its SSH server from each start, with compose's meaning (a compose
	// app service's); Restart restarts it as a service's. Its end does
	// not end the environment.
	Entrypoint Words  `toml:"entrypoint,omitempty"`
	Command    Words  `toml:"command,omitempty"`
	Restart    string `toml:"restart,omitempty"`
	// Aliases are more names the services find the environment by (a
	// compose file's name of the service it is).
	Aliases []string `toml:"aliases,omitempty"`
	// MaxRestarts is Restart's on-failure:N.
	MaxRestarts int `toml:"-"`

	// File is the spec's path and Dir its directory (absolute).
	File string `toml:"-"`
	Dir  string `toml:"-"`
	// BaseRef is Base parsed.
	BaseRef rootfs.Ref `toml:"-"`
	// PortMaps are Ports parsed; the SSH port is not among them.
	PortMaps []container.PortMap `toml:"-"`
	// ServiceOrder is the services' names, each after what it depends on.
	ServiceOrder []string `toml:"-"`
	// Lifecycle are a devcontainer.json's commands, run in the running
	// environment (devbox.toml has [[run]] build steps instead).
	Lifecycle Lifecycle `toml:"-"`
	// Features are a devcontainer.json's features, in its order, and
	// FeaturesLock its devcontainer-lock.json ("" when there is none).
	Features     []Feature `toml:"-"`
	FeaturesLock string    `toml:"-"`
	// Title is a devcontainer.json's "name", free text: the environment
	// is named after its workspace folder (Name) and found by either.
	Title string `toml:"-"`
	// devcontainer is what a devcontainer.json said itself, for
	// WithImageMetadata; nil for a devbox.toml.
	devcontainer *dcLocal
}

// Feature is a Dev Container feature: an OCI artifact (Ref) or a folder
// beside the devcontainer.json (Dir), with its options.
type Feature struct {
	// Ref is the feature as the devcontainer.json names it.
	Ref string
	// Dir is a local feature's folder (absolute); empty for an OCI one.
	Dir     string
	Options map[string]string
	// Value is the string the feature was given instead of an object of
	// options ("latest"), which is its version option's if it has one.
	Value *string
	Line  int
}

// Lifecycle are the commands of a devcontainer.json's lifecycle, each a
// list of commands (an object of named commands gives several).
type Lifecycle struct {
	// OnCreate, UpdateContent and PostCreate run once, at the first up
	// of the environment (again after rm).
	OnCreate, UpdateContent, PostCreate []Command
	// PostStart runs at every up that starts the environment.
	PostStart []Command
	// PostAttach runs before each interactive SSH login shell.
	PostAttach []Command
}

// Command is a lifecycle command: Args run as they are, or Shell runs
// under /bin/sh -c.
type Command struct {
	Name  string
	Shell string
	Args  []string
}

// Argv is the command's argv.
func (c Command) Argv() []string {
	if c.Args != nil {
		return c.Args
	}
	return []string{"/bin/sh", "-c", c.Shell}
}

type Packages struct {
	Manager string   `toml:"manager"`
	Install []string `toml:"install"`
	// CentOSVault points a CentOS 7 base's repositories at
	// vault.centos.org, since its mirrors are gone (default true).
	CentOSVault *bool `toml:"centos_vault"`
}

type Node struct {
	Version string `toml:"version"`
	Mirror  string `toml:"mirror"`
}

type NPM struct {
	Registry string `toml:"registry"`
	TokenEnv string `toml:"token_env"`
}

type SSH struct {
	Port           int      `toml:"port"`
	Address        string   `toml:"address"`
	User           string   `toml:"user"`
	AuthorizedKeys []string `toml:"authorized_keys"`
	Password       string   `toml:"password"`
	PasswordEnv    string   `toml:"password_env"`
	PasswordHash   string   `toml:"password_hash"`
	// Forwarding allows -L, -R and -D; AgentForwarding allows -A (both
	// default true, as in OpenSSH).
	Forwarding      *bool `toml:"forwarding"`
	AgentForwarding *bool `toml:"agent_forwarding"`
	// ImageLogins accepts the logins the image itself sets up for the
	// user: its ~/.ssh/authorized_keys and its password in /etc/shadow,
	// as the sshd a Dockerfile installs would. Off unless asked: an image
	// (and every layer it is made of) would decide who logs in.
	ImageLogins *bool `toml:"image_logins"`

	// Keys are the authorized keys read from AuthorizedKeys, one
	// authorized_keys line each.
	Keys []string `toml:"-"`
}

type RunStep struct {
	Command string `toml:"command"`
}

type Resources struct {
	CPUs   float64 `toml:"cpus"`
	Memory string  `toml:"memory"`
	Pids   int64   `toml:"pids"`

	// MemoryBytes is Memory parsed; 0 means no limit.
	MemoryBytes int64 `toml:"-"`
}

// Cache is a registry repository of prebuilt build steps, shared by a
// team: `devbox cache push` publishes each step's layer there under its
// cache key, and builds pull the steps whose keys it has.
// Dockerfile is how a dockerfile: base builds, as docker build's flags.
type Dockerfile struct {
	// Context is the build context (default: the Dockerfile's directory).
	Context string            `toml:"context"`
	Args    map[string]string `toml:"args"`
	Target  string            `toml:"target"`
}

type Cache struct {
	Image string `toml:"image"` // REGISTRY/REPO
}

// Security holds the opt-outs and opt-ins of the container's isolation;
// each one that weakens it is printed whenever the spec builds or runs.
type Security struct {
	// Seccomp is "default" (Docker's default profile) or "unconfined".
	Seccomp string `toml:"seccomp"`
	// Devices are host device nodes the container may use besides the
	// standard ones, e.g. "/dev/fuse".
	Devices []string `toml:"devices"`
	// UserNS false runs the container without a user namespace: its root
	// is the host's root (default true).
	UserNS *bool `toml:"userns"`
}

// UserNS reports whether the spec wants a user namespace (the default).
func (s *Spec) UserNS() bool { return s.Security.UserNS == nil || *s.Security.UserNS }

// Warnings are the spec's choices that weaken the container's isolation,
// one line each, to be printed.
func (s *Spec) Warnings() []string {
	var w []string
	if s.Security.Seccomp == "unconfined" {
		w = append(w, `seccomp is off: [security] seccomp = "unconfined"`)
	}
	for _, d := range s.Security.Devices {
		w = append(w, "the host device "+d+" is open to the container: [security] devices")
	}
	if s.Network.Mode == "host" {
		w = append(w, `the container shares the host's network: [network] mode = "host"`)
	}
	return w
}

type Network struct {
	Mode   string `toml:"mode"`
	Subnet string `toml:"subnet"`
}

// Managers are the accepted values of packages.manager.
var Managers = []string{"auto", "yum", "dnf", "apt", "apk", "zypper"}

// NetworkModes are the accepted values of network.mode.
var NetworkModes = []string{"bridge", "host", "none"}

// Error is a problem with a spec, at a line and key. It prints as
// "devbox.toml:LINE: KEY: what is wrong".
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
}

// Load reads and validates the spec at path: a devbox.toml, or a
// devcontainer.json. A devbox.toml that is not there is looked for as a
// devcontainer.json of its directory.
func Load(path string) (*Spec, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(abs)
	if errors.Is(err, fs.ErrNotExist) && filepath.Base(abs) == FileName {
		if dc := FindDevcontainer(filepath.Dir(abs)); dc != "" {
			abs = dc
			f, err = os.Open(abs)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	defer f.Close()
	// One byte more than allowed tells a spec over the limit from one at it.
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	return Parse(abs, data)
}

// MaxSize and MaxNesting bound what is decoded: a spec is ten lines, and
// the TOML decoder's time grows fast with nesting.
const (
	MaxSize    = 1 << 20
	MaxNesting = 16
)

// Parse decodes and validates a spec's content; path names it in
// errors and anchors relative paths.
func Parse(path string, data []byte) (*Spec, error) {
	shown := displayName(path)
	if len(data) > MaxSize {
		return nil, &Error{File: shown, Line: 1, Msg: fmt.Sprintf("the spec is over %d bytes (1 MiB); a devbox.toml is a few lines", MaxSize)}
	}
	if IsDevcontainer(path) {
		return parseDevcontainer(path, data)
	}
	if err := checkShape(data); err != nil {
		return nil, asShapeError(shown, err)
	}
	p := &parser{file: path, shown: shown, loc: newLocator(data)}
	return p.parse(data)
}

// displayName is how errors name the spec: as the user is likely to have
// typed it, relative to the working directory when that is shorter.
func displayName(path string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return path
}

type parser struct {
	file  string
	shown string
	loc   *locator
	// dir anchors relative paths when it is not the file's directory
	// (a devcontainer.json's workspace).
	dir string
}

func (p *parser) errorf(key, format string, args ...any) error {
	return &Error{File: p.shown, Line: p.loc.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

// typeErrRE matches BurntSushi/toml's type errors, which are not typed:
// `toml: line 3 (last key "ports"): incompatible types: ...`.
var typeErrRE = lazyRE(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)

func (p *parser) parse(data []byte) (*Spec, error) {
	var s Spec
	md, err := toml.Decode(string(data), &s)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			line := pe.Position.Line
			if line == 0 && pe.LastKey != "" {
				line = p.loc.line(pe.LastKey)
			}
			return nil, &Error{File: p.shown, Line: max(line, 1), Key: pe.LastKey, Msg: pe.Message}
		}
		if m := typeErrRE().FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			if line == 0 {
				line = p.loc.line(m[2])
			}
			return nil, &Error{File: p.shown, Line: line, Key: m[2], Msg: m[3]}
		}
		return nil, &Error{File: p.shown, Line: 1, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0].String()
		return nil, p.errorf(k, "unknown key")
	}
	s.File = p.file
	s.Dir = filepath.Dir(p.file)
	if p.dir != "" {
		s.Dir = p.dir
	}
	if err := p.validate(&s, md); err != nil {
		return nil, err
	}
	return &s, nil
}
