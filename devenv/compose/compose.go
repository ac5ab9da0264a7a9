package compose

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/devbox/devbox/internal/helperbin"
)

// Helper is the name of the compose reader devbox runs.
const Helper = "devbox-compose"

// Options name the compose files and what docker compose would take from
// its command line.
type Options struct {
	Files       []string
	ProjectName string
	// Dir is the project directory (default: the first file's).
	Dir string
}

// Project is a loaded compose project.
type Project struct {
	Name     string             `json:"name"`
	Services map[string]Service `json:"services"`
	Volumes  map[string]Volume  `json:"volumes"`
	// Warnings are what the loader said besides the project (an obsolete
	// version key).
	Warnings []string `json:"-"`
}

// Volume is a top-level volume: its name, project-scoped.
type Volume struct {
	Name     string `json:"name"`
	External bool   `json:"external"`
}

// Load runs the helper on o's files and decodes the project.
func Load(o Options) (*Project, error) {
	args := []string{"config", "--project-name", o.ProjectName}
	if o.Dir != "" {
		args = append(args, "--project-directory", o.Dir)
	}
	for _, f := range o.Files {
		args = append(args, "-f", f)
	}
	stdout, stderr, err := helperbin.Run(Helper, "compose files are read by", args, nil)
	if err != nil {
		return nil, err
	}
	var p Project
	if err := json.Unmarshal(stdout, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", Helper, err)
	}
	type plain Service // decoded without UnmarshalJSON
	for name, svc := range p.Services {
		if err := json.Unmarshal(svc.raw, (*plain)(&svc)); err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		svc.Name = name
		p.Services[name] = svc
	}
	for _, line := range strings.Split(strings.TrimSpace(string(stderr)), "\n") {
		if line != "" {
			p.Warnings = append(p.Warnings, logMessage(line))
		}
	}
	return &p, nil
}

// logMessage is the msg of a logrus line, or the line.
func logMessage(line string) string {
	_, msg, ok := strings.Cut(line, ` msg="`)
	if !ok {
		return line
	}
	msg = strings.TrimSuffix(msg, `"`)
	return strings.ReplaceAll(msg, `\"`, `"`)
}

// Closure is names and every service they depend on, in the project's
// sorted order.
func (p *Project) Closure(names []string) []string {
	in := map[string]bool{}
	var add func(string)
	add = func(n string) {
		if in[n] {
			return
		}
		in[n] = true
		for dep, d := range p.Services[n].DependsOn {
			if _, ok := p.Services[dep]; ok || d.Required {
				add(dep)
			}
		}
	}
	for _, n := range names {
		add(n)
	}
	out := make([]string, 0, len(in))
	for n := range in {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
