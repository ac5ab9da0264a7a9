package spec

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"golang.org/x/sys/unix"

	container "github.com/devbox/devbox/runtime"
)

// validateServices checks the [services.NAME] tables, makes each one's
// container spec and orders them by depends_on (ServiceOrder).
func (p *parser) validateServices(s *Spec) error {
	if len(s.Services) == 0 {
		if len(s.DependsOn) > 0 {
			return p.errorf("depends_on", "there are no services to depend on")
		}
		return nil
	}
	if s.Network.Mode != "bridge" && s.NetworkService() == "" {
		return p.errorf("services", "services share a network with the environment: [network] mode must be \"bridge\" or \"service:NAME\", not %q", s.Network.Mode)
	}
	used := map[int]string{s.SSH.Port: "ssh.port"}
	for i, m := range s.PortMaps {
		used[m.HostPort] = fmt.Sprintf("ports.%d", i)
	}
	names := slices.Sorted(maps.Keys(s.Services))
	for _, name := range names {
		svc := s.Services[name]
		svc.Name = name
		if err := p.validateService(s, svc, used); err != nil {
			return err
		}
	}
	if err := p.checkDependsOn(s, s.DependsOn, "depends_on", ""); err != nil {
		return err
	}
	for _, a := range s.Aliases {
		if _, ok := s.Services[a]; ok || !labelRE().MatchString(a) {
			return p.errorf("aliases", "%q is not a valid host name, or is a service's", a)
		}
	}
	order, err := p.serviceOrder(s, names)
	if err != nil {
		return err
	}
	s.ServiceOrder = order
	return nil
}

// validateService checks one service and makes its Spec.
func (p *parser) validateService(s *Spec, svc *Service, used map[int]string) error {
	key := "services." + svc.Name
	if !labelRE().MatchString(svc.Name) || svc.Name == s.Hostname {
		return p.errorf(key, "%q is not a valid service name (lowercase letters, digits and '-', at most 63, not the environment's host name)", svc.Name)
	}
	if (svc.Image == "") == (svc.Build.Context == "") {
		return p.errorf(key, "give either image or build")
	}
	for k := range svc.Env {
		if !envNameRE().MatchString(k) {
			return p.errorf(key+".env."+k, "%q is not a valid environment variable name", k)
		}
	}
	if err := p.serviceTiming(svc, key); err != nil {
		return err
	}
	if err := p.checkDependsOn(s, svc.DependsOn, key+".depends_on", svc.Name); err != nil {
		return err
	}
	for _, a := range svc.Aliases {
		if !labelRE().MatchString(a) || a == s.Hostname {
			return p.errorf(key+".aliases", "%q is not a valid host name (lowercase letters, digits and '-', at most 63, not the environment's)", a)
		}
		if other, ok := s.Services[a]; ok && other != svc {
			return p.errorf(key+".aliases", "%q is the name of another service", a)
		}
	}
	ports, err := servicePorts(svc, used)
	if err != nil {
		return p.errorf(key+".ports", "%v", err)
	}
	sub, err := p.serviceSpec(s, svc)
	if err != nil {
		return err
	}
	sub.PortMaps = ports
	svc.Spec = sub
	return nil
}

// checkDependsOn checks what deps names and their conditions; self is
// the service that depends, or "" for the environment.
func (p *parser) checkDependsOn(s *Spec, deps DependsOn, key, self string) error {
	for dep, cond := range deps {
		if _, ok := s.Services[dep]; !ok || dep == self {
			return p.errorf(key, "no other service is called %q", dep)
		}
		if !slices.Contains([]string{ServiceStarted, ServiceHealthy, ServiceCompleted}, cond) {
			return p.errorf(key+"."+dep, "condition %q is not one of %s, %s, %s", cond, ServiceStarted, ServiceHealthy, ServiceCompleted)
		}
		if probe, _ := s.Services[dep].Healthcheck.Probe(); cond == ServiceHealthy && probe == nil {
			return p.errorf(key+"."+dep, "waits for %s to be healthy, but it has no healthcheck", dep)
		}
	}
	return nil
}

// serviceTiming checks restart, the stop signal and grace period, and
// the healthcheck.
func (p *parser) serviceTiming(svc *Service, key string) error {
	var err error
	if svc.MaxRestarts, err = parseRestart(svc.Restart); err != nil {
		return p.errorf(key+".restart", "%v", err)
	}
	if svc.StopSignal != "" && StopSignal(svc.StopSignal) == 0 {
		return p.errorf(key+".stop_signal", "%q is not a signal name such as SIGINT", svc.StopSignal)
	}
	svc.Grace = 10 * time.Second
	if svc.StopGracePeriod != "" {
		d, err := time.ParseDuration(svc.StopGracePeriod)
		if err != nil || d < 0 {
			return p.errorf(key+".stop_grace_period", "%q is not a duration such as 10s", svc.StopGracePeriod)
		}
		svc.Grace = d
	}
	if _, err := svc.Healthcheck.Probe(); err != nil {
		return p.errorf(key+".healthcheck", "%v", err)
	}
	return nil
}

// NetworkService is the service whose network the environment shares
// ([network] mode = "service:NAME", compose's network_mode), or "".
func (s *Spec) NetworkService() string {
	name, _ := strings.CutPrefix(s.Network.Mode, "service:")
	if name == s.Network.Mode {
		return ""
	}
	return name
}

// parseRestart checks a restart policy (compose's: no, always,
// on-failure[:N], unless-stopped) and returns on-failure's N.
func parseRestart(restart string) (int, error) {
	policy, n, _ := strings.Cut(restart, ":")
	switch policy {
	case "", "no", "always", "unless-stopped":
		if n != "" {
			return 0, fmt.Errorf("%q: only on-failure takes a count", restart)
		}
	case "on-failure":
		if n == "" {
			return 0, nil
		}
		v, err := strconv.Atoi(n)
		if err != nil || v < 1 {
			return 0, fmt.Errorf("%q: the count must be a positive number", restart)
		}
		return v, nil
	default:
		return 0, fmt.Errorf("%q is not one of no, always, on-failure[:N], unless-stopped", restart)
	}
	return 0, nil
}

// validateMain checks the process the environment runs beside its SSH
// server.
func (p *parser) validateMain(s *Spec) error {
	var err error
	if s.MaxRestarts, err = parseRestart(s.Restart); err != nil {
		return p.errorf("restart", "%v", err)
	}
	if s.Restart != "" && len(s.Command)+len(s.Entrypoint) == 0 {
		return p.errorf("restart", "there is no command to restart")
	}
	return nil
}

// StopSignal is a signal's number from its name (SIGINT, INT) or number;
// 0 if it is none.
func StopSignal(name string) unix.Signal {
	if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 65 {
		return unix.Signal(n)
	}
	name = strings.ToUpper(name)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	return unix.SignalNum(name)
}

// servicePorts parses a service's published ports; a host port may be
// published once in the whole spec.
func servicePorts(svc *Service, used map[int]string) ([]container.PortMap, error) {
	var out []container.PortMap
	for i, ps := range svc.Ports {
		m, err := ParsePort(ps)
		if err != nil {
			return nil, err
		}
		if prev, ok := used[m.HostPort]; ok {
			return nil, fmt.Errorf("host port %d is used twice (also by %s)", m.HostPort, prev)
		}
		used[m.HostPort] = fmt.Sprintf("services.%s.ports.%d", svc.Name, i)
		out = append(out, m)
	}
	return out, nil
}

// serviceSpec is the spec of svc's container: its image or Dockerfile, its
// mounts and environment, and the environment's security and network. It
// is decoded and validated as any spec is; an error in it is reported at
// the service's table.
func (p *parser) serviceSpec(s *Spec, svc *Service) (*Spec, error) {
	key := "services." + svc.Name
	t := map[string]any{
		"name": s.Name + "-" + svc.Name, "hostname": svc.Name, "insecure": s.Insecure,
		"network": map[string]any{"mode": "bridge", "subnet": s.Network.Subnet},
		// The environment's user namespace (its id range is theirs), but
		// not its opt-outs: seccomp and devices are for its own tools.
		"security": map[string]any{"userns": s.UserNS()},
	}
	if len(svc.Env) > 0 {
		t["env"] = svc.Env
	}
	if res := resourcesTable(svc.CPUs, svc.MemLimit, svc.PidsLimit); len(res) > 0 {
		t["resources"] = res
	}
	t["base"] = svc.Image
	if b := svc.Build; b.Context != "" {
		ctx := b.Context
		if !filepath.IsAbs(ctx) {
			ctx = filepath.Join(s.Dir, ctx)
		}
		df := cmp.Or(b.Dockerfile, "Dockerfile")
		if !filepath.IsAbs(df) {
			df = filepath.Join(ctx, df)
		}
		t["base"] = "dockerfile:" + df
		d := map[string]any{"context": ctx}
		if len(b.Args) > 0 {
			d["args"] = b.Args
		}
		if b.Target != "" {
			d["target"] = b.Target
		}
		t["dockerfile"] = d
	}
	mounts, err := volumeTables(svc.Volumes)
	if err != nil {
		return nil, p.errorf(key+".volumes", "%v", err)
	}
	for _, target := range svc.Tmpfs {
		mounts = append(mounts, map[string]any{"target": target, "type": "tmpfs"})
	}
	if len(mounts) > 0 {
		t["mounts"] = mounts
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(t); err != nil {
		return nil, p.errorf(key, "%v", err)
	}
	sub := &parser{file: p.file, shown: p.shown, loc: newLocator(buf.Bytes()), dir: s.Dir}
	out, err := sub.parse(buf.Bytes())
	var se *Error
	if errors.As(err, &se) {
		k := strings.NewReplacer("mounts", "volumes", "resources.memory", "mem_limit", "resources.cpus", "cpus", "resources.pids", "pids_limit").Replace(se.Key)
		if k == "base" {
			k = "image"
			if svc.Build.Context != "" {
				k = "build"
			}
		}
		return nil, p.errorf(key+"."+k, "%s", se.Msg)
	}
	return out, err
}

// volumeTables are compose's short volume syntax as [[mounts]] tables:
// NAME:TARGET[:ro] a named volume, PATH:TARGET[:ro] a bind (a PATH starts
// with / or .).
func volumeTables(vols []string) ([]map[string]any, error) {
	var out []map[string]any
	for _, v := range vols {
		parts := strings.Split(v, ":")
		ro := false
		if n := len(parts); n == 3 && (parts[2] == "ro" || parts[2] == "rw") {
			ro = parts[2] == "ro"
			parts = parts[:2]
		}
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("%q: want SOURCE:TARGET[:ro] (an anonymous volume needs a name)", v)
		}
		m := map[string]any{"source": parts[0], "target": parts[1], "readonly": ro}
		if !strings.HasPrefix(parts[0], "/") && !strings.HasPrefix(parts[0], ".") && !strings.HasPrefix(parts[0], "~") {
			m["type"] = "volume"
		}
		out = append(out, m)
	}
	return out, nil
}

// serviceOrder is the services in an order that starts each after what it
// depends on (names sorted where free); a cycle is an error naming it.
func (p *parser) serviceOrder(s *Spec, names []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case 1:
			return p.errorf("services."+n+".depends_on", "depends on itself: %s", strings.Join(append(path, n), " -> "))
		case 2:
			return nil
		}
		state[n] = 1
		for _, d := range slices.Sorted(maps.Keys(s.Services[n].DependsOn)) {
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// decodeTable decodes a TOML table given as a map into v, refusing keys
// that are not among keys.
func decodeTable(m map[string]any, v any, keys ...string) error {
	for k := range m {
		if !slices.Contains(keys, k) {
			return fmt.Errorf("unknown key %q", k)
		}
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(m); err != nil {
		return err
	}
	_, err := toml.Decode(buf.String(), v)
	return err
}
