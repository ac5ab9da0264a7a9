package spec

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	container "github.com/devbox/devbox/runtime"
)

// How each of devcontainer.json's keys becomes devbox.toml's.

// base is image, or build's Dockerfile (paths are the devcontainer.json's
// folder's).
func (d *dcReader) base(dc *devcontainer, m map[string]any) error {
	here := filepath.Dir(d.file)
	dockerfile, context, from := dc.DockerFile, dc.Context, "dockerFile"
	var args map[string]string
	var target string
	if dc.Build != nil {
		dockerfile, context, args, target, from = cmp.Or(dc.Build.Dockerfile, dockerfile), cmp.Or(dc.Build.Context, context), dc.Build.Args, dc.Build.Target, "build.dockerfile"
	}
	switch {
	case dc.Image != "" && dockerfile != "":
		return d.errorf("image", "image and a Dockerfile (%s) are exclusive", from)
	case dc.Image != "":
		m["base"] = dc.Image
		d.origin["base"] = "image"
	case dockerfile != "":
		m["base"] = "dockerfile:" + filepath.Join(here, dockerfile)
		d.origin["base"] = from
		df := map[string]any{"context": filepath.Join(here, cmp.Or(context, "."))}
		d.origin["dockerfile.context"] = "build.context"
		if len(args) > 0 {
			df["args"] = args
			d.origin["dockerfile.args"] = "build.args"
		}
		if target != "" {
			df["target"] = target
			d.origin["dockerfile.target"] = "build.target"
		}
		m["dockerfile"] = df
	default:
		return d.errorf("", "no image or build.dockerfile: devbox needs one (dockerComposeFile is not supported)")
	}
	return nil
}

// ports publishes forwardPorts and appPort on 127.0.0.1.
func (d *dcReader) ports(dc *devcontainer, m map[string]any) error {
	ports, _ := m["ports"].([]string) // a compose service's, first
	for i, raw := range dc.ForwardPorts {
		var n int
		if err := json.Unmarshal(raw, &n); err != nil {
			return d.errorf(fmt.Sprintf("forwardPorts.%d", i), "%s: only a port number is supported (not HOST:PORT)", raw)
		}
		d.origin[fmt.Sprintf("ports.%d", len(ports))] = fmt.Sprintf("forwardPorts.%d", i)
		ports = append(ports, fmt.Sprintf("%d:%d", n, n))
	}
	if len(dc.AppPort) > 0 {
		var list []json.RawMessage
		if json.Unmarshal(dc.AppPort, &list) != nil {
			list = []json.RawMessage{dc.AppPort}
		}
		for _, raw := range list {
			var n int
			var s string
			switch {
			case json.Unmarshal(raw, &n) == nil:
				s = fmt.Sprintf("%d:%d", n, n)
			case json.Unmarshal(raw, &s) == nil:
			default:
				return d.errorf("appPort", "%s: want a port or \"HOST:CONTAINER\"", raw)
			}
			d.origin[fmt.Sprintf("ports.%d", len(ports))] = "appPort"
			ports = append(ports, s)
		}
	}
	if len(ports) > 0 {
		m["ports"] = ports
	}
	return nil
}

// env is containerEnv with remoteEnv over it; ${containerEnv:X} in
// remoteEnv takes containerEnv's X, or is left for the environment to
// resolve with the image's (Spec.Environ).
func (d *dcReader) env(dc *devcontainer, m map[string]any) error {
	env := map[string]string{}
	if composed, ok := m["env"].(map[string]string); ok {
		env = composed // a compose service's, under the file's own
	}
	for k, v := range dc.ContainerEnv {
		env[k] = v
		d.origin["env."+k] = "containerEnv." + k
	}
	for _, k := range slices.Sorted(maps.Keys(dc.RemoteEnv)) {
		v := dc.RemoteEnv[k]
		if v == nil {
			delete(env, k)
			continue
		}
		env[k] = containerEnvRE().ReplaceAllStringFunc(*v, func(s string) string {
			g := containerEnvRE().FindStringSubmatch(s)
			if cv, ok := dc.ContainerEnv[g[1]]; ok {
				return cv
			}
			return s
		})
		d.origin["env."+k] = "remoteEnv." + k
	}
	if len(env) > 0 {
		m["env"] = env
	}
	return nil
}

// mounts are the workspace and mounts, as [[mounts]] (binds only).
func (d *dcReader) mounts(dc *devcontainer, m map[string]any, raw map[string]any) error {
	folder := d.workspaceFolder(raw)
	list, _ := m["mounts"].([]map[string]any)
	composed := len(dc.DockerComposeFile) > 0
	for i := range list {
		d.origin[fmt.Sprintf("mounts.%d", i)] = "dockerComposeFile"
	}
	if !composed {
		// A compose file's service mounts the workspace itself.
		ws := map[string]any{"source": d.workspace, "target": folder}
		if dc.WorkspaceMount != "" {
			mt, err := parseMountString(dc.WorkspaceMount)
			if err != nil {
				return d.errorf("workspaceMount", "%v", err)
			}
			ws = mt
		}
		d.origin["mounts.0"] = "workspaceMount"
		list = append(list, ws)
	}
	for i, rawMount := range dc.Mounts {
		key := fmt.Sprintf("mounts.%d", i)
		var mt map[string]any
		var s string
		if json.Unmarshal(rawMount, &s) == nil {
			var err error
			if mt, err = parseMountString(s); err != nil {
				return d.errorf(key, "%v", err)
			}
		} else {
			o, err := mountObject(rawMount)
			if err != nil {
				return d.errorf(key, "want a mount string or {source, target, type}")
			}
			if mt, err = mountTable(o); err != nil {
				return d.errorf(key, "%v", err)
			}
		}
		d.origin[fmt.Sprintf("mounts.%d", len(list))] = key
		list = append(list, mt)
	}
	if len(list) > 0 {
		m["mounts"] = list
	}
	if !composed {
		m["workdir"] = folder
		d.origin["workdir"] = "workspaceFolder"
	}
	return nil
}

// parseMountString reads Docker's --mount syntax strictly, as a
// devcontainer.json's own mount: an option devbox does not know is an
// error, and a mount needs source= (but a tmpfs) and target=.
func parseMountString(s string) (map[string]any, error) {
	m, unknown := mountFields(s)
	for _, f := range unknown {
		if k, _, _ := strings.Cut(strings.TrimSpace(f), "="); k != "consistency" && k != "bind-propagation" {
			return nil, fmt.Errorf("%q: not a mount option devbox knows", f)
		}
	}
	mt, err := mountTable(m)
	if err != nil {
		return nil, err
	}
	if m.Target == "" || m.Source == "" && mt["type"] != "tmpfs" {
		return nil, fmt.Errorf("%q: a mount needs source= and target=", s)
	}
	if m.Source == "" {
		delete(mt, "source") // a tmpfs has none
	}
	return mt, nil
}

// mountFields reads Docker's --mount syntax, source=…,target=…
// [,type=…][,readonly], as the Dev Container CLI's parseMount does;
// unknown are the fields it does not read.
func mountFields(s string) (m container.Mount, unknown []string) {
	for _, f := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "source", "src":
			m.Source = v
		case "target", "destination", "dst":
			m.Target = v
		case "type":
			m.Type = v
		case "readonly", "ro":
			m.Readonly = v == "" || v == "true" || v == "1"
		default:
			unknown = append(unknown, f)
		}
	}
	return m, unknown
}

// mountObject reads a mount's object form, {source, target, type,
// readonly}.
func mountObject(raw json.RawMessage) (container.Mount, error) {
	var o struct {
		Source, Target, Type string
		ReadOnly             bool `json:"readonly"`
	}
	err := json.Unmarshal(raw, &o)
	return container.Mount{Source: o.Source, Target: o.Target, Type: o.Type, Readonly: o.ReadOnly}, err
}

// mountTable is m as a [[mounts]] table of devbox.toml.
func mountTable(m container.Mount) (map[string]any, error) {
	mt := map[string]any{"source": m.Source, "target": m.Target}
	if err := mountType(mt, m.Type); err != nil {
		return nil, err
	}
	if m.Readonly {
		mt["readonly"] = true
	}
	return mt, nil
}

// mountType records a mount's type=: a bind (the default), a named
// volume devbox keeps, or a tmpfs.
func mountType(mt map[string]any, typ string) error {
	switch typ {
	case "", "bind":
	case "volume", "tmpfs":
		mt["type"] = typ
	default:
		return fmt.Errorf("type=%s is not supported: bind, volume or tmpfs", typ)
	}
	return nil
}

// customizations.devbox holds devbox.toml's keys; its tables merge into
// what the rest made (its keys win).
func (d *dcReader) customizations(dc *devcontainer, m map[string]any) error {
	raw, ok := dc.Customizations["devbox"]
	if !ok {
		return nil
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		return d.errorf("customizations.devbox", "want an object with devbox.toml's keys")
	}
	integral(c)
	for k, v := range c {
		d.origin[k] = "customizations.devbox." + k
		sub, isTable := v.(map[string]any)
		have, hasTable := m[k].(map[string]any)
		if isTable && hasTable {
			for sk, sv := range sub {
				have[sk] = sv
				d.origin[k+"."+sk] = "customizations.devbox." + k + "." + sk
			}
			continue
		}
		if list, ok := v.([]any); ok && k == "mounts" {
			if have, ok := m["mounts"].([]map[string]any); ok {
				for i, x := range list {
					mt, _ := x.(map[string]any)
					d.origin[fmt.Sprintf("mounts.%d", len(have))] = fmt.Sprintf("customizations.devbox.mounts.%d", i)
					have = append(have, mt)
				}
				m["mounts"] = have
				continue
			}
		}
		m[k] = v
	}
	return nil
}

// lifecycle reads the lifecycle commands: a string (a shell command), an
// array (a command), or an object of named ones.
func (d *dcReader) lifecycle(dc *devcontainer) (Lifecycle, error) {
	var l Lifecycle
	for _, c := range []struct {
		key string
		raw json.RawMessage
		dst *[]Command
	}{
		{"onCreateCommand", dc.OnCreate, &l.OnCreate},
		{"updateContentCommand", dc.UpdateContent, &l.UpdateContent},
		{"postCreateCommand", dc.PostCreate, &l.PostCreate},
		{"postStartCommand", dc.PostStart, &l.PostStart},
		{"postAttachCommand", dc.PostAttach, &l.PostAttach},
	} {
		if len(c.raw) == 0 || string(c.raw) == "null" {
			continue
		}
		cmds, err := parseCommands(c.raw)
		if err != nil {
			return l, d.errorf(c.key, "%v", err)
		}
		*c.dst = cmds
	}
	return l, nil
}

func parseCommands(raw json.RawMessage) ([]Command, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []Command{{Shell: s}}, nil
	}
	var args []string
	if json.Unmarshal(raw, &args) == nil {
		if len(args) == 0 {
			return nil, errors.New("an empty command")
		}
		return []Command{{Args: args}}, nil
	}
	var named map[string]json.RawMessage
	if err := json.Unmarshal(raw, &named); err != nil {
		return nil, errors.New("want a string, an array or an object of commands")
	}
	var out []Command
	for _, name := range slices.Sorted(maps.Keys(named)) {
		cmds, err := parseCommands(named[name])
		if err != nil || len(cmds) != 1 {
			return nil, fmt.Errorf("%s: want a string or an array", name)
		}
		cmds[0].Name = name
		out = append(out, cmds[0])
	}
	return out, nil
}
