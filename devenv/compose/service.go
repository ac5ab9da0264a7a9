package compose

import (
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
	Networks        map[string]*Network  `json:"networks"`

	raw json.RawMessage
}

// UnmarshalJSON keeps the service's JSON; Load decodes it afterwards.
func (s *Service) UnmarshalJSON(b []byte) error {
	s.raw = append(json.RawMessage(nil), b...)
	return nil
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
	"tty", "stdin_open", "pull_policy",
}

// Unsupported names what s asks that devbox cannot honour: keys outside
// honoured, and values of honoured ones it cannot give.
func (s *Service) Unsupported() []string {
	var keys map[string]json.RawMessage
	json.Unmarshal(s.raw, &keys)
	var out []string
	for k, v := range keys {
		if !slices.Contains(honoured, k) && !isEmpty(v) {
			out = append(out, k)
		}
	}
	var build map[string]json.RawMessage
	json.Unmarshal(keys["build"], &build)
	for k, v := range build {
		if !slices.Contains([]string{"context", "dockerfile", "args", "target"}, k) && !isEmpty(v) {
			out = append(out, "build."+k)
		}
	}
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
