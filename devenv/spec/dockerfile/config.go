package dockerfile

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"golang.org/x/sys/unix"
)

// The instructions that only set the image config, as BuildKit's
// dockerfile2llb dispatches them (dispatchHealthcheck, dispatchVolume,
// dispatchStopSignal, dispatchOnbuild): devbox does not act on them, but
// what it builds carries them, for images FROM it and for export.

func (e *evaluation) healthcheck(c *instructions.HealthCheckCommand) {
	h := c.Health
	// StartInterval has no place in an image config go-containerregistry
	// writes (Docker 20.10's has none either); it is dropped.
	e.cfg.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
		StartPeriod: h.StartPeriod, Retries: h.Retries}
}

func (e *evaluation) volume(c *instructions.VolumeCommand) error {
	for _, v := range c.Volumes {
		if v == "" {
			return fmt.Errorf("VOLUME specified can not be an empty string")
		}
		if !slices.Contains(e.cfg.Volumes, v) {
			e.cfg.Volumes = append(e.cfg.Volumes, v)
		}
	}
	return nil
}

// stopSignal takes what moby's signal.ParseSignal takes: a number, or a
// name with or without SIG (RTMIN+n and RTMAX-n too), kept as written.
func (e *evaluation) stopSignal(c *instructions.StopSignalCommand) error {
	if !validSignal(c.Signal) {
		return fmt.Errorf("invalid signal: %s", c.Signal)
	}
	e.cfg.StopSignal = c.Signal
	return nil
}

func validSignal(s string) bool {
	if n, err := strconv.Atoi(s); err == nil {
		return n != 0 // moby takes any other number
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if name == "CLD" || name == "IOT" || name == "POLL" { // aliases moby's SignalMap has
		return true
	}
	for _, rt := range []string{"RTMIN+", "RTMAX-"} {
		if rest, ok := strings.CutPrefix(name, rt); ok {
			n, err := strconv.Atoi(rest)
			return err == nil && n >= 1 && n <= 15
		}
	}
	return name == "RTMIN" || name == "RTMAX" || unix.SignalNum("SIG"+name) != 0
}

// triggers are the ONBUILD instructions of the config a stage starts
// from, parsed to run first in the stage, as BuildKit's
// initOnBuildTriggers does (reported at the stage's FROM line); the
// stage's own config starts with none.
func (e *evaluation) triggers() ([]instructions.Command, error) {
	var out []instructions.Command
	for _, t := range e.cfg.OnBuild {
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: ONBUILD %s: %w", e.s.path, e.s.Line, t, err)
		}
		if len(res.AST.Children) != 1 {
			return nil, fmt.Errorf("%s:%d: ONBUILD %s: onbuild trigger should be a single expression", e.s.path, e.s.Line, t)
		}
		node := res.AST.Children[0]
		node.StartLine, node.EndLine = e.s.Line, e.s.Line
		c, err := instructions.ParseCommand(node)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: ONBUILD %s: %w", e.s.path, e.s.Line, t, err)
		}
		// A stage it copies from would have to join the stages the
		// target needs, which were chosen before the base was known.
		if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" && stageByRef(e.s.all, e.s.byName, cp.From, e.s.Number) != nil {
			return nil, fmt.Errorf("%s:%d: ONBUILD %s: COPY --from a stage in a trigger is not supported", e.s.path, e.s.Line, t)
		}
		out = append(out, c)
	}
	e.cfg.OnBuild = nil
	return out, nil
}
