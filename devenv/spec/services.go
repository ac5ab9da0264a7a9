package spec

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	shlex "github.com/anmitsu/go-shlex"
)

// Service is a [services.NAME] table: a container beside the environment,
// with compose's keys and meaning (a database in three lines).
type Service struct {
	Image      string            `toml:"image,omitempty"`
	Build      ServiceBuild      `toml:"build,omitempty"`
	Command    Words             `toml:"command,omitempty"`
	Entrypoint Words             `toml:"entrypoint,omitempty"`
	Env        map[string]string `toml:"env,omitempty"`
	Volumes    []string          `toml:"volumes,omitempty"`
	Tmpfs      []string          `toml:"tmpfs,omitempty"`
	Ports      []string          `toml:"ports,omitempty"`
	DependsOn  DependsOn         `toml:"depends_on,omitempty"`
	// Healthcheck is compose's: test, interval, timeout, retries,
	// start_period.
	Healthcheck *Healthcheck `toml:"healthcheck,omitempty"`
	// Restart is compose's: "no", "always", "on-failure[:N]" or
	// "unless-stopped".
	Restart         string `toml:"restart,omitempty"`
	User            string `toml:"user,omitempty"`
	WorkingDir      string `toml:"working_dir,omitempty"`
	StopSignal      string `toml:"stop_signal,omitempty"`
	StopGracePeriod string `toml:"stop_grace_period,omitempty"`
	// Aliases are more names the service is reached by (compose's
	// networks.NAME.aliases).
	Aliases []string `toml:"aliases,omitempty"`
	// CPUs, MemLimit and PidsLimit are its cgroup limits, by compose's
	// names ("512m", as [resources] memory).
	CPUs      float64 `toml:"cpus,omitzero"`
	MemLimit  string  `toml:"mem_limit,omitempty"`
	PidsLimit int64   `toml:"pids_limit,omitzero"`

	// Name is the table's name; Spec is the service's container as a
	// spec of its own (base, ports, mounts, the environment's security),
	// which the builder builds and devenv runs.
	Name string `toml:"-"`
	Spec *Spec  `toml:"-"`
	// Grace is StopGracePeriod parsed (default 10s); MaxRestarts is
	// on-failure's N (0: no limit).
	Grace       time.Duration `toml:"-"`
	MaxRestarts int           `toml:"-"`
}

// ServiceBuild is compose's build: a context directory, or a table of
// context, dockerfile, args and target.
type ServiceBuild struct {
	Context    string            `toml:"context,omitempty"`
	Dockerfile string            `toml:"dockerfile,omitempty"`
	Args       map[string]string `toml:"args,omitempty"`
	Target     string            `toml:"target,omitempty"`
}

// UnmarshalTOML takes the short form, a context directory.
func (b *ServiceBuild) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		b.Context = v
		return nil
	case map[string]any:
		type plain ServiceBuild // without this method
		var p plain
		err := decodeTable(v, &p, "context", "dockerfile", "args", "target")
		*b = ServiceBuild(p)
		return err
	}
	return fmt.Errorf("want a context directory or a table, got %T", v)
}

// Words is a command: an array as it is, or a string split as a shell
// would split it (compose's command and entrypoint).
type Words []string

// UnmarshalTOML takes a string or an array of strings.
func (w *Words) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		words, err := shlex.Split(v, true)
		if err != nil {
			return fmt.Errorf("%q: %w", v, err)
		}
		*w = words
		return nil
	case []any:
		out, err := stringList(v)
		*w = out
		return err
	}
	return fmt.Errorf("want a string or an array of strings, got %T", v)
}

// Dependency conditions, as compose names them.
const (
	ServiceStarted   = "service_started"
	ServiceHealthy   = "service_healthy"
	ServiceCompleted = "service_completed_successfully"
)

// DependsOn is compose's depends_on: service names, or a table of them
// with a condition each.
type DependsOn map[string]string

// UnmarshalTOML takes an array of names, or a table of NAME =
// {condition = C} (compose's) or NAME = C.
func (d *DependsOn) UnmarshalTOML(v any) error {
	*d = DependsOn{}
	switch v := v.(type) {
	case []any:
		names, err := stringList(v)
		for _, n := range names {
			(*d)[n] = ServiceStarted
		}
		return err
	case map[string]any:
		for name, raw := range v {
			var dep struct {
				Condition string `toml:"condition"`
			}
			if c, ok := raw.(string); ok {
				(*d)[name] = c // devbox config's short form
				continue
			}
			t, ok := raw.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: want a table with condition, got %T", name, raw)
			}
			if err := decodeTable(t, &dep, "condition"); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			(*d)[name] = cmp.Or(dep.Condition, ServiceStarted)
		}
		return nil
	}
	return fmt.Errorf("want an array of service names or a table, got %T", v)
}

// Healthcheck is compose's healthcheck of a service.
type Healthcheck struct {
	Test        Words  `toml:"test,omitempty"`
	Interval    string `toml:"interval,omitempty"`
	Timeout     string `toml:"timeout,omitempty"`
	Retries     int    `toml:"retries,omitzero"`
	StartPeriod string `toml:"start_period,omitempty"`
	Disable     bool   `toml:"disable,omitempty"`
}

// Probe is a parsed healthcheck: the command to run in the service, and
// its timing with Docker's defaults.
type Probe struct {
	Args        []string
	Interval    time.Duration
	Timeout     time.Duration
	Retries     int
	StartPeriod time.Duration
}

// Probe is the healthcheck parsed, or nil when there is none.
func (h *Healthcheck) Probe() (*Probe, error) {
	if h == nil || h.Disable || len(h.Test) == 0 || h.Test[0] == "NONE" {
		return nil, nil
	}
	p := &Probe{Interval: 30 * time.Second, Timeout: 30 * time.Second, Retries: 3}
	switch h.Test[0] {
	case "CMD":
		p.Args = h.Test[1:]
	case "CMD-SHELL":
		p.Args = []string{"/bin/sh", "-c", strings.Join(h.Test[1:], " ")}
	default:
		// A string test is a shell's (compose), split already: join.
		p.Args = []string{"/bin/sh", "-c", strings.Join(h.Test, " ")}
	}
	if len(p.Args) == 0 {
		return nil, fmt.Errorf("test: %q has no command", h.Test[0])
	}
	for _, d := range []struct {
		key string
		in  string
		out *time.Duration
	}{{"interval", h.Interval, &p.Interval}, {"timeout", h.Timeout, &p.Timeout}, {"start_period", h.StartPeriod, &p.StartPeriod}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%s: %q is not a duration such as 5s", d.key, d.in)
		}
		if v > 0 || d.key == "start_period" { // 0 is Docker's default
			*d.out = v
		}
	}
	if h.Retries > 0 {
		p.Retries = h.Retries
	}
	return p, nil
}

func stringList(v []any) ([]string, error) {
	out := make([]string, 0, len(v))
	for _, e := range v {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("want strings, got %T", e)
		}
		out = append(out, s)
	}
	return out, nil
}
