package convert

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/devbox/devbox/devenv/spec"
)

// Devcontainer converts the devcontainer.json at file into the
// devbox.toml to put in its workspace (paths relative to it). Its
// lifecycle commands run in the running environment, and its features
// have no devbox.toml keys: they are reported, with the devcontainer.json
// itself as the way to keep them.
func Devcontainer(file string) (*Result, error) {
	dc, err := spec.ReadDevcontainer(file)
	if err != nil {
		return nil, err
	}
	m, l := dc.TOML, dc.Lifecycle
	ws := spec.WorkspaceOf(file)
	relative(m, ws)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# devbox.toml written by devbox init --from %s\n", file)
	if err := toml.NewEncoder(&buf).Encode(m); err != nil {
		return nil, err
	}
	r := &Result{Spec: withNewline(buf.Bytes())}
	for _, c := range []struct {
		key  string
		cmds []spec.Command
	}{{"onCreateCommand", l.OnCreate}, {"updateContentCommand", l.UpdateContent}, {"postCreateCommand", l.PostCreate},
		{"postStartCommand", l.PostStart}, {"postAttachCommand", l.PostAttach}} {
		for _, cmd := range c.cmds {
			line := cmd.Shell
			if cmd.Args != nil {
				line = strings.Join(cmd.Args, " ")
			}
			r.Unmapped = append(r.Unmapped, fmt.Sprintf("%s: %s: %s: runs in the running environment, which a devbox.toml does not do; "+
				"a [[run]] step runs at build, without the workspace (or keep using the devcontainer.json)", file, c.key, line))
		}
	}
	for _, f := range dc.Features {
		r.Unmapped = append(r.Unmapped, fmt.Sprintf("%s:%d: features: %s: a feature has no devbox.toml key; its install.sh can be a [[run]] step (or keep using the devcontainer.json)", file, f.Line, f.Ref))
	}
	return r, nil
}

// relative makes the paths devbox.toml keeps (base's Dockerfile, the
// Dockerfile's context, mount sources) relative to the workspace, where
// the devbox.toml goes.
func relative(m map[string]any, ws string) {
	rel := func(p string) string {
		if r, err := filepath.Rel(ws, p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
		return p
	}
	if b, ok := m["base"].(string); ok && strings.HasPrefix(b, "dockerfile:") {
		m["base"] = "dockerfile:" + rel(strings.TrimPrefix(b, "dockerfile:"))
	}
	if df, ok := m["dockerfile"].(map[string]any); ok {
		if c, ok := df["context"].(string); ok {
			df["context"] = rel(c)
		}
	}
	if mounts, ok := m["mounts"].([]map[string]any); ok {
		for _, mt := range mounts {
			if s, ok := mt["source"].(string); ok {
				mt["source"] = rel(s)
			}
		}
	}
	delete(m, "name") // the workspace's name, as devbox would make it
}
