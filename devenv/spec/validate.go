package spec

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
	gossh "golang.org/x/crypto/ssh"

	"github.com/devbox/devbox/rootfs"
	container "github.com/devbox/devbox/runtime"
)

// Defaults for keys a spec leaves out.
const (
	DefaultSSHPort    = 2222
	DefaultSSHAddress = "127.0.0.1"
	DefaultUser       = "root"
	DefaultNodeMirror = "https://nodejs.org/dist"
	DefaultRegistry   = "https://registry.npmjs.org/"
	DefaultManager    = "auto"
	DefaultNetwork    = "bridge"
)

// The patterns are compiled on first use: the same binary is every
// container's init, whose start-up should not pay for spec checking.
var (
	labelRE    = lazyRE(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	userRE     = lazyRE(`^[a-z_][a-z0-9_-]{0,31}$`)
	envNameRE  = lazyRE(`^[A-Za-z_][A-Za-z0-9_]*$`)
	versionRE  = lazyRE(`^v?(\d+)\.(\d+)\.(\d+)$`)
	majorRE    = lazyRE(`^v?\d+$`)
	packageRE  = lazyRE(`^[A-Za-z0-9][A-Za-z0-9._+:@=~<>*-]*$`)
	sizeRE     = lazyRE(`^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$`)
	cryptRE    = lazyRE(`^\$(1|5|6|y|2[abxy]?|7|gy)\$[./A-Za-z0-9$=,]+$`)
	keyTypeRE  = lazyRE(`^(ssh-|ecdsa-|sk-)`)
	notLabelRE = lazyRE(`[^a-z0-9-]+`)
)

func lazyRE(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

func (p *parser) validate(s *Spec, md toml.MetaData) error {
	checks := []func() error{
		func() error { return p.validateTop(s, md) },
		func() error { return p.validateSSH(s, md) },
		func() error { return p.validatePorts(s) },
		func() error { return p.validatePackages(s) },
		func() error { return p.validateNode(s) },
		func() error { return p.validateMounts(s) },
		func() error { return p.validateRun(s) },
		func() error { return p.validateResources(s, md) },
		func() error { return p.validateNetwork(s) },
		func() error { return p.validateSecurity(s) },
		func() error { return p.validateCache(s) },
		func() error { return p.validateDockerfile(s, md) },
		func() error { return p.validateServices(s) },
		func() error { return p.validateMain(s) },
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) validateCache(s *Spec) error {
	if s.Cache.Image == "" {
		return nil
	}
	if _, err := rootfs.CacheRepository(s.Cache.Image); err != nil {
		return p.errorf("cache.image", "%q is not a registry repository (REGISTRY/REPO): %v", s.Cache.Image, err)
	}
	return nil
}

// validateDockerfile checks the [dockerfile] table, which only a
// dockerfile: base takes; the Dockerfile itself is read by the build.
func (p *parser) validateDockerfile(s *Spec, md toml.MetaData) error {
	if s.BaseRef.Kind != rootfs.KindDockerfile {
		if md.IsDefined("dockerfile") {
			return p.errorf("dockerfile", "only with base = \"dockerfile:PATH\"")
		}
		return nil
	}
	if fi, err := os.Stat(s.BaseRef.Name); err != nil || fi.IsDir() {
		return p.errorf("base", "%s: not a Dockerfile (%v)", s.BaseRef.Name, err)
	}
	d := &s.Dockerfile
	if d.Context == "" {
		d.Context = filepath.Dir(s.BaseRef.Name)
	} else if !filepath.IsAbs(d.Context) {
		d.Context = filepath.Join(s.Dir, d.Context)
	}
	if fi, err := os.Stat(d.Context); err != nil || !fi.IsDir() {
		return p.errorf("dockerfile.context", "%s: not a directory", d.Context)
	}
	for k := range d.Args {
		if !envNameRE().MatchString(k) {
			return p.errorf("dockerfile.args."+k, "%q is not a valid build arg name", k)
		}
	}
	return nil
}

func (p *parser) validateSecurity(s *Spec) error {
	switch s.Security.Seccomp {
	case "":
		s.Security.Seccomp = "default"
	case "default", "unconfined":
	default:
		return p.errorf("security.seccomp", "%q is not \"default\" or \"unconfined\"", s.Security.Seccomp)
	}
	for i, d := range s.Security.Devices {
		key := fmt.Sprintf("security.devices.%d", i)
		if !path.IsAbs(d) || !strings.HasPrefix(path.Clean(d), "/dev/") {
			return p.errorf(key, "%q is not a device under /dev", d)
		}
		fi, err := os.Stat(d)
		if err != nil {
			return p.errorf(key, "%s: %v", d, errors.Unwrap(err))
		}
		if fi.Mode()&os.ModeDevice == 0 {
			return p.errorf(key, "%s is not a device node", d)
		}
	}
	return nil
}

// hasControl reports a C0 control character other than tab, or DEL.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f })
}

// CheckName checks an environment name given on the command line with
// the spec's rule, before it becomes part of any path.
func CheckName(name string) error {
	if !labelRE().MatchString(name) {
		return fmt.Errorf("%q is not an environment name (lowercase letters, digits and '-', at most 63)", name)
	}
	return nil
}

// DefaultName is the environment name of a spec in dir: the directory's
// name, made a valid DNS label.
func DefaultName(dir string) string {
	n := notLabelRE().ReplaceAllString(strings.ToLower(filepath.Base(dir)), "-")
	n = strings.Trim(n, "-")
	if len(n) > 63 {
		n = strings.Trim(n[:63], "-")
	}
	if n == "" {
		n = "devbox"
	}
	return n
}

func (p *parser) validateSSH(s *Spec, md toml.MetaData) error {
	c := &s.SSH
	if !md.IsDefined("ssh", "port") {
		c.Port = DefaultSSHPort
	} else if c.Port < 1 || c.Port > 65535 {
		return p.errorf("ssh.port", "%d is not a port (1-65535)", c.Port)
	}
	if c.Address == "" {
		c.Address = DefaultSSHAddress
	} else if net.ParseIP(c.Address) == nil {
		return p.errorf("ssh.address", "%q is not an IP address", c.Address)
	}
	if c.User == "" {
		c.User = DefaultUser
	} else if !userRE().MatchString(c.User) {
		return p.errorf("ssh.user", "%q is not a valid user name", c.User)
	}
	if c.ImageLogins == nil {
		off := false
		c.ImageLogins = &off
	}
	set := 0
	for _, k := range []string{"password", "password_env", "password_hash"} {
		if md.IsDefined("ssh", k) {
			set++
		}
	}
	if set > 1 {
		return p.errorf("ssh.password", "password, password_env and password_hash are exclusive: set one")
	}
	if md.IsDefined("ssh", "password") && c.Password == "" {
		return p.errorf("ssh.password", "an empty password is refused; remove the key to turn password login off")
	}
	if md.IsDefined("ssh", "password_env") && !envNameRE().MatchString(c.PasswordEnv) {
		return p.errorf("ssh.password_env", "%q is not an environment variable name", c.PasswordEnv)
	}
	if md.IsDefined("ssh", "password_hash") && !cryptRE().MatchString(c.PasswordHash) {
		return p.errorf("ssh.password_hash", "not a crypt(3) hash such as $6$salt$hash")
	}
	for i, entry := range c.AuthorizedKeys {
		keys, err := readAuthorizedKeys(entry, s.Dir)
		if err != nil {
			return p.errorf(fmt.Sprintf("ssh.authorized_keys.%d", i), "%v", err)
		}
		c.Keys = append(c.Keys, keys...)
	}
	return nil
}

// readAuthorizedKeys reads one authorized_keys entry: a literal key, a file,
// or a glob (which may match nothing, so that a template can name
// ~/.ssh/id_*.pub on a machine without keys).
func readAuthorizedKeys(entry, dir string) ([]string, error) {
	entry = strings.TrimSpace(entry)
	if keyTypeRE().MatchString(entry) {
		k, err := ParseAuthorizedKeys([]byte(entry))
		if err != nil {
			return nil, err
		}
		return k, nil
	}
	p, err := expandPath(entry, dir)
	if err != nil {
		return nil, err
	}
	files := []string{p}
	if strings.ContainsAny(p, "*?[") {
		if files, err = filepath.Glob(p); err != nil {
			return nil, fmt.Errorf("bad pattern %q: %v", entry, err)
		}
	}
	var keys []string
	for _, f := range files {
		data, err := ReadFile(f) // a spec may name /dev/zero
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %v", f, err)
		}
		k, err := ParseAuthorizedKeys(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		keys = append(keys, k...)
	}
	return keys, nil
}

// ParseAuthorizedKeys parses authorized_keys content into one normalised
// line per key. Options (from=, command=, …) are refused rather than
// silently ignored: a key restricted on a real server must not get full
// access here.
func ParseAuthorizedKeys(data []byte) ([]string, error) {
	var keys []string
	rest := data
	for len(rest) > 0 {
		key, comment, options, next, err := gossh.ParseAuthorizedKey(rest)
		if err != nil {
			if len(keys) == 0 && len(strings.TrimSpace(string(rest))) > 0 {
				return nil, fmt.Errorf("no valid public key: %v", err)
			}
			if len(keys) == 0 {
				return nil, fmt.Errorf("no public key found")
			}
			break
		}
		if len(options) > 0 {
			return nil, fmt.Errorf("key %q has options (%s), which devbox does not enforce; remove them", comment, strings.Join(options, ","))
		}
		line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(key)))
		// A comment is only a label: what could break a line goes.
		comment = strings.TrimSpace(strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return -1
			}
			return r
		}, comment))
		if comment != "" {
			line += " " + comment
		}
		keys = append(keys, line)
		rest = next
	}
	return keys, nil
}

// expandPath expands a leading ~ and makes p absolute relative to dir.
func expandPath(p, dir string) (string, error) {
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("cannot expand ~: %v", err)
		}
		p = filepath.Join(home, strings.TrimPrefix(p, "~"))
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return filepath.Clean(p), nil
}

// ParsePort parses [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp]; HOSTIP defaults
// to 127.0.0.1 and may be an IPv6 address in brackets.
func ParsePort(s string) (container.PortMap, error) {
	spec := s
	if i := strings.LastIndex(spec, "/"); i >= 0 {
		if proto := spec[i+1:]; proto != "tcp" {
			return container.PortMap{}, fmt.Errorf("%q: only tcp is supported, not %q", s, proto)
		}
		spec = spec[:i]
	}
	m := container.PortMap{HostIP: "127.0.0.1"}
	i := strings.LastIndex(spec, ":")
	if i < 0 {
		return container.PortMap{}, fmt.Errorf("%q: want [HOSTIP:]HOSTPORT:CONTAINERPORT", s)
	}
	hostPart, ctr := spec[:i], spec[i+1:]
	if j := strings.LastIndex(hostPart, ":"); j >= 0 {
		ip := strings.Trim(hostPart[:j], "[]")
		if net.ParseIP(ip) == nil {
			return container.PortMap{}, fmt.Errorf("%q: %q is not an IP address", s, ip)
		}
		m.HostIP = ip
		hostPart = hostPart[j+1:]
	}
	var err error
	if m.HostPort, err = parsePortNumber(hostPart); err != nil {
		return container.PortMap{}, fmt.Errorf("%q: host port %v", s, err)
	}
	if m.ContainerPort, err = parsePortNumber(ctr); err != nil {
		return container.PortMap{}, fmt.Errorf("%q: container port %v", s, err)
	}
	return m, nil
}

func parsePortNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return n, nil
}

func (p *parser) validatePorts(s *Spec) error {
	used := map[int]string{s.SSH.Port: "ssh.port"}
	for i, ps := range s.Ports {
		key := fmt.Sprintf("ports.%d", i)
		m, err := ParsePort(ps)
		if err != nil {
			return p.errorf("ports", "%v", err)
		}
		if prev, ok := used[m.HostPort]; ok {
			return p.errorf("ports", "host port %d is used twice (also by %s)", m.HostPort, prev)
		}
		used[m.HostPort] = key
		s.PortMaps = append(s.PortMaps, m)
	}
	return nil
}

func (p *parser) validatePackages(s *Spec) error {
	if s.Packages.Manager == "" {
		s.Packages.Manager = DefaultManager
	} else if !slices.Contains(Managers, s.Packages.Manager) {
		return p.errorf("packages.manager", "%q is not one of %s", s.Packages.Manager, strings.Join(Managers, ", "))
	}
	for _, name := range s.Packages.Install {
		if !packageRE().MatchString(name) {
			return p.errorf("packages.install", "%q is not a package name", name)
		}
	}
	return nil
}

func (p *parser) validateNode(s *Spec) error {
	v := s.Node.Version
	switch {
	case v == "", v == "lts", majorRE().MatchString(v):
	case versionRE().MatchString(v):
		s.Node.Version = strings.TrimPrefix(v, "v")
	default:
		return p.errorf("node.version", "%q is not an exact version (12.9.1), a major (20) or lts", v)
	}
	if s.Node.Mirror == "" {
		s.Node.Mirror = DefaultNodeMirror
	} else if s.Node.Mirror != "npm" && !isHTTPURL(s.Node.Mirror) {
		return p.errorf("node.mirror", "%q is not an http(s) URL or \"npm\"", s.Node.Mirror)
	}
	if s.NPM.Registry != "" && !isHTTPURL(s.NPM.Registry) {
		return p.errorf("npm.registry", "%q is not an http(s) URL", s.NPM.Registry)
	}
	if s.NPM.TokenEnv != "" && !envNameRE().MatchString(s.NPM.TokenEnv) {
		return p.errorf("npm.token_env", "%q is not an environment variable name", s.NPM.TokenEnv)
	}
	return nil
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (p *parser) validateResources(s *Spec, md toml.MetaData) error {
	r := &s.Resources
	if md.IsDefined("resources", "cpus") && r.CPUs <= 0 {
		return p.errorf("resources.cpus", "must be more than 0")
	}
	if md.IsDefined("resources", "pids") && r.Pids <= 0 {
		return p.errorf("resources.pids", "must be more than 0")
	}
	if r.Memory != "" {
		n, err := ParseSize(r.Memory)
		if err != nil {
			return p.errorf("resources.memory", "%v", err)
		}
		if n < 6<<20 {
			return p.errorf("resources.memory", "%q is less than the 6MiB minimum", r.Memory)
		}
		r.MemoryBytes = n
	}
	return nil
}

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}

// ParseSize parses a size such as 512MiB, 4GiB, 1.5g or 1000000.
// Bare k/m/g are binary units, as in Docker.
func ParseSize(s string) (int64, error) {
	m := sizeRE().FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size such as 512MiB or 4GiB", s)
	}
	unit, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", s, m[2])
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil || f*unit > 1<<62 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return int64(f * unit), nil
}
