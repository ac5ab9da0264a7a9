package compose

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Service is a compose service as devbox can run it; raw is all of it,
// for Unsupported.
type Service struct {
	Name            string               `json:"-"`
	Image           string               `json:"image"`
	Build           *Build               `json:"build"`
	Command         []string             `json:"command"`
	Entrypoint      []string             `json:"entrypoint"`
	Environment     map[string]*string   `json:"environment"`
	Volumes         []Mount              `json:"volumes"`
	Tmpfs           []string             `json:"tmpfs"`
	Ports           []Port               `json:"ports"`
	DependsOn       map[string]DependsOn `json:"depends_on"`
	Healthcheck     *Healthcheck         `json:"healthcheck"`
	Restart         string               `json:"restart"`
	User            string               `json:"user"`
	WorkingDir      string               `json:"working_dir"`
	StopSignal      string               `json:"stop_signal"`
	StopGracePeriod string               `json:"stop_grace_period"`
	NetworkMode     string               `json:"network_mode"`
	CPUs            float64              `json:"cpus"`
	MemLimit        string               `json:"mem_limit"`
	PidsLimit       int64                `json:"pids_limit"`
	Deploy          *Deploy              `json:"deploy"`
	Networks        map[string]*Network  `json:"networks"`

	raw json.RawMessage
}

// UnmarshalJSON keeps the service's JSON; Load decodes it afterwards.
func (s *Service) UnmarshalJSON(b []byte) error {
	s.raw = append(json.RawMessage(nil), b...)
	return nil
}

// Deploy is the part of compose's deploy devbox honours: the limits.
type Deploy struct {
	Resources struct {
		Limits *struct {
			CPUs   float64 `json:"cpus"`
			Memory string  `json:"memory"`
			Pids   int64   `json:"pids"`
		} `json:"limits"`
	} `json:"resources"`
}

// Limits are the service's cgroup limits: deploy's over the short keys,
// as docker compose takes them. Memory is in bytes.
func (s *Service) Limits() (cpus float64, memory string, pids int64) {
	cpus, memory, pids = s.CPUs, s.MemLimit, s.PidsLimit
	if d := s.Deploy; d != nil && d.Resources.Limits != nil {
		l := d.Resources.Limits
		cpus, memory, pids = cmp.Or(l.CPUs, cpus), cmp.Or(l.Memory, memory), cmp.Or(l.Pids, pids)
	}
	return cpus, memory, pids
}

type Build struct {
	Context    string             `json:"context"`
	Dockerfile string             `json:"dockerfile"`
	Args       map[string]*string `json:"args"`
	Target     string             `json:"target"`
}

// Mount is a service's volume, in compose's long form.
type Mount struct {
	Type     string `json:"type"`
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only"`
}

type Port struct {
	HostIP    string `json:"host_ip"`
	Target    uint32 `json:"target"`
	Published string `json:"published"`
	Protocol  string `json:"protocol"`
}

type DependsOn struct {
	Condition string `json:"condition"`
	Required  bool   `json:"required"`
}

type Healthcheck struct {
	Test        []string `json:"test"`
	Interval    string   `json:"interval"`
	Timeout     string   `json:"timeout"`
	Retries     int      `json:"retries"`
	StartPeriod string   `json:"start_period"`
	Disable     bool     `json:"disable"`
}

// Network is a service's attachment to a network. devbox puts every
// service of an environment on one network: the aliases of all of a
// service's networks are its names there.
type Network struct {
	Aliases []string `json:"aliases"`
}

// honoured are the service keys devbox runs as compose means them, and
// those it may leave aside without changing what the service does: the
// environment files and profiles are applied by the loader already, and
// every service's init reaps as `init: true` would have tini do.
var honoured = []string{
	"image", "build", "command", "entrypoint", "environment", "env_file", "volumes", "tmpfs", "ports",
	"depends_on", "healthcheck", "restart", "user", "working_dir", "stop_signal", "stop_grace_period",
	"network_mode", "networks", "init", "profiles", "expose", "labels", "hostname", "container_name",
	"tty", "stdin_open", "pull_policy", "cpus", "mem_limit", "pids_limit", "deploy",
}

// Unsupported names what s asks that devbox cannot honour: keys outside
// honoured, and values of honoured ones it cannot give.
func (s *Service) Unsupported() []string {
	keys := object(s.raw)
	deploy := object(keys["deploy"])
	res := object(deploy["resources"])
	out := unknownKeys(keys, "", honoured...)
	out = append(out, unknownKeys(object(keys["build"]), "build.", "context", "dockerfile", "args", "target")...)
	out = append(out, unknownKeys(deploy, "deploy.", "resources", "placement")...)
	out = append(out, unknownKeys(res, "deploy.resources.", "limits")...)
	out = append(out, unknownKeys(object(res["limits"]), "deploy.resources.limits.", "cpus", "memory", "pids")...)
	for _, m := range s.Volumes {
		if m.Type != "bind" && m.Type != "volume" && m.Type != "tmpfs" {
			out = append(out, fmt.Sprintf("volumes (type %s)", m.Type))
		}
	}
	for _, p := range s.Ports {
		if p.Protocol != "" && p.Protocol != "tcp" {
			out = append(out, fmt.Sprintf("ports (%d/%s: devbox publishes TCP)", p.Target, p.Protocol))
		}
	}
	if s.NetworkMode != "" && s.NetworkMode != "bridge" && s.NetworkMode != "default" && !strings.HasPrefix(s.NetworkMode, "service:") {
		out = append(out, "network_mode ("+s.NetworkMode+")")
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// object is the JSON object raw's members; none if it is not one.
func object(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	json.Unmarshal(raw, &m)
	return m
}

// unknownKeys are the keys of the object m, prefixed, that are not among
// known and set something.
func unknownKeys(m map[string]json.RawMessage, prefix string, known ...string) []string {
	var out []string
	for k, v := range m {
		if !slices.Contains(known, k) && !isEmpty(v) {
			out = append(out, prefix+k)
		}
	}
	return out
}

// isEmpty says a JSON value sets nothing: null, false, "", [], {}.
func isEmpty(v json.RawMessage) bool {
	switch strings.TrimSpace(string(v)) {
	case "null", "false", `""`, "[]", "{}", "0":
		return true
	}
	return false
}

// Aliases are s's aliases on all its networks.
func (s *Service) Aliases() []string {
	var out []string
	for _, n := range s.Networks {
		if n != nil {
			out = append(out, n.Aliases...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
