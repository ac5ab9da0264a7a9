package compose

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
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
	helper, err := findHelper()
	if err != nil {
		return nil, err
	}
	args := []string{"config", "--project-name", o.ProjectName}
	if o.Dir != "" {
		args = append(args, "--project-directory", o.Dir)
	}
	for _, f := range o.Files {
		args = append(args, "-f", f)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helper, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(strings.TrimPrefix(stderr.String(), Helper+": "))
		if msg == "" {
			msg = err.Error()
		}
		return nil, errors.New(msg)
	}
	var p Project
	if err := json.Unmarshal(stdout.Bytes(), &p); err != nil {
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
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
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

// findHelper is devbox-compose beside the running devbox, else on PATH.
func findHelper() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), Helper)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(Helper); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("compose files are read by %s, installed beside devbox (make build makes both): not found", Helper)
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
