package build

import (
	"github.com/devbox/devbox/devenv/spec"

	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// StepKind names what a build step does.
type StepKind string

const (
	StepBase     StepKind = "base"
	StepPackages StepKind = "packages"
	StepNode     StepKind = "node"
	StepNPM      StepKind = "npm"
	StepUser     StepKind = "user"
	StepConfig   StepKind = "config"
	StepRun      StepKind = "run"
)

// Step is one build step. Its Key is sha256(parent key + canonical step), so
// a change to a step invalidates it and everything after it, and nothing
// before it.
type Step struct {
	Kind StepKind
	// Summary is what the build prints for the step: "node 12.9.1".
	Summary string
	// Canonical is the step's full input, in a stable text form.
	Canonical string
	Key       string
	// Command is a run step's shell command.
	Command string
}

// Plan is the ordered list of steps a spec implies; Steps[0] is the base.
type Plan struct {
	Steps []Step
}

// Top is the key of the last step: the build as a whole.
func (p *Plan) Top() string { return p.Steps[len(p.Steps)-1].Key }

// NewPlan returns the plan of s. baseID pins the base's content (an image's
// manifest digest, once pulled); empty means not yet known, and the plan is
// keyed by the reference alone.
func NewPlan(s *spec.Spec, baseID string) *Plan {
	p := &Plan{}
	add := func(kind StepKind, summary string, canonical ...string) {
		parent := ""
		if n := len(p.Steps); n > 0 {
			parent = p.Steps[n-1].Key
		}
		c := strings.Join(canonical, "\n")
		sum := sha256.Sum256([]byte(parent + "\n" + string(kind) + "\n" + c))
		p.Steps = append(p.Steps, Step{Kind: kind, Summary: summary, Canonical: c, Key: hex.EncodeToString(sum[:])})
	}

	base := "ref=" + s.BaseRef.String()
	if baseID != "" {
		base += "\nid=" + baseID
	}
	add(StepBase, "base "+s.Base, base)

	if len(s.Packages.Install) > 0 {
		add(StepPackages, fmt.Sprintf("packages (%s) %s", s.Packages.Manager, strings.Join(s.Packages.Install, " ")),
			"manager="+s.Packages.Manager, "install="+strings.Join(s.Packages.Install, " "))
	}
	if s.Node.Version != "" {
		add(StepNode, "node "+s.Node.Version, "version="+s.Node.Version, "mirror="+s.Node.Mirror, "registry="+s.NPMRegistry())
	}
	if s.NPM.Registry != "" {
		add(StepNPM, "npm registry "+s.NPM.Registry, "registry="+s.NPM.Registry, "token_env="+s.NPM.TokenEnv)
	}
	add(StepUser, "user "+s.SSH.User, "user="+s.SSH.User, "shell="+s.Shell, "password="+s.PasswordFingerprint())

	var env []string
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	add(StepConfig, "config workdir="+cmp.Or(s.Workdir, "(image)")+fmt.Sprintf(" env=%d", len(env)),
		"workdir="+s.Workdir, "env="+strings.Join(env, "\x00"))

	for _, r := range s.Run {
		add(StepRun, "run "+r.Command, "command="+r.Command, "workdir="+s.Workdir)
		p.Steps[len(p.Steps)-1].Command = r.Command
	}
	return p
}
