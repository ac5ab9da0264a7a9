package spec

import (
	"fmt"
	"net"
	"path"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/devbox/devbox/rootfs"
)

// validateTop checks the spec's top-level keys and [env], and fills in
// the base reference, the name and the host name.
func (p *parser) validateTop(s *Spec, md toml.MetaData) error {
	if !md.IsDefined("base") || s.Base == "" {
		return p.errorf("base", "is required (a registry reference, oci:DIR, docker-archive:FILE, dir:PATH or debootstrap:SUITE)")
	}
	ref, err := rootfs.ParseRef(s.Base, s.Dir)
	if err != nil {
		return p.errorf("base", "%v", err)
	}
	ref.Insecure = s.Insecure
	s.BaseRef = ref

	if s.Name == "" {
		s.Name = DefaultName(s.Dir)
	} else if !labelRE().MatchString(s.Name) {
		return p.errorf("name", "%q is not a valid name (lowercase letters, digits and '-', at most 63)", s.Name)
	}
	if s.Hostname == "" {
		s.Hostname = s.Name
	} else if !labelRE().MatchString(s.Hostname) {
		return p.errorf("hostname", "%q is not a valid host name (lowercase letters, digits and '-', at most 63)", s.Hostname)
	}
	for key, v := range map[string]string{"workdir": s.Workdir, "shell": s.Shell} {
		if v != "" && !path.IsAbs(v) {
			return p.errorf(key, "%q must be an absolute path", v)
		}
		if hasControl(v) {
			return p.errorf(key, "control characters (%q) are not allowed in a path", v)
		}
	}
	return p.validateEnv(s)
}

// validateEnv checks [env]'s names and values.
func (p *parser) validateEnv(s *Spec) error {
	for k, v := range s.Env {
		if !envNameRE().MatchString(k) {
			return p.errorf("env."+k, "%q is not a valid environment variable name", k)
		}
		// Newlines are a value's own (the Dev Container CLI passes
		// them, and its test configs have them); NUL cannot be in an
		// environment, and other control characters are a terminal's.
		if hasControl(strings.NewReplacer("\n", "", "\r", "").Replace(v)) {
			return p.errorf("env."+k, "control characters (%q) are not allowed in a value", v)
		}
	}
	return nil
}

// validateRun checks the [[run]] commands.
func (p *parser) validateRun(s *Spec) error {
	for i, r := range s.Run {
		if strings.TrimSpace(r.Command) == "" {
			return p.errorf(fmt.Sprintf("run.%d.command", i), "must not be empty")
		}
		if strings.ContainsRune(r.Command, 0) {
			return p.errorf(fmt.Sprintf("run.%d.command", i), "a NUL character cannot be passed to a shell")
		}
	}
	return nil
}

// validateNetwork checks [network] and fills in its default mode.
func (p *parser) validateNetwork(s *Spec) error {
	if s.Network.Mode == "" {
		s.Network.Mode = DefaultNetwork
	} else if svc, ok := strings.CutPrefix(s.Network.Mode, "service:"); ok {
		if _, ok := s.Services[svc]; !ok {
			return p.errorf("network.mode", "%q: no service is called %q", s.Network.Mode, svc)
		}
	} else if !slices.Contains(NetworkModes, s.Network.Mode) {
		return p.errorf("network.mode", "%q is not one of %s, or service:NAME", s.Network.Mode, strings.Join(NetworkModes, ", "))
	}
	if s.Network.Subnet == "" {
		return nil
	}
	_, n, err := net.ParseCIDR(s.Network.Subnet)
	if err != nil || n.IP.To4() == nil || len(n.Mask) != net.IPv4len {
		return p.errorf("network.subnet", "%q is not an IPv4 CIDR such as 10.99.0.0/20", s.Network.Subnet)
	}
	if ones, _ := n.Mask.Size(); ones > 29 {
		return p.errorf("network.subnet", "%q is too small for containers (at most /29)", s.Network.Subnet)
	}
	s.Network.Subnet = n.String() // 10.99.0.1/20 is 10.99.0.0/20
	return nil
}
