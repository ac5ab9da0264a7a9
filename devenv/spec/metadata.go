package spec

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/devbox/devbox/devenv/volume"
	container "github.com/devbox/devbox/runtime"
)

// MetadataLabel is the image label the Dev Container CLI writes and
// reads: config fragments that travel with an image (imageMetadataLabel
// in the CLI's src/spec-node/imageMetadata.ts).
const MetadataLabel = "devcontainer.metadata"

// dcLocal is what a devcontainer.json said itself, kept so that an
// image's metadata can be merged under it once the image is known.
type dcLocal struct {
	file, workspace, folder   string
	remoteUser, containerUser string
	userFromDevbox            bool // customizations.devbox set ssh.user
	containerEnv              map[string]string
	remoteEnv                 map[string]*string
	devboxEnv                 map[string]string // customizations.devbox.env
	lifecycle                 Lifecycle
	mountTargets              map[string]bool
	workspaceTarget           string
	labelEntry                json.RawMessage
}

// metadataEntry is one fragment of the label: the keys of the CLI's
// ImageMetadataEntry devbox acts on. The others (customizations,
// portsAttributes, waitFor, …) are the editor's and are ignored, as in a
// devcontainer.json.
type metadataEntry struct {
	ID            string             `json:"id"`
	RemoteUser    string             `json:"remoteUser"`
	ContainerUser string             `json:"containerUser"`
	ContainerEnv  map[string]string  `json:"containerEnv"`
	RemoteEnv     map[string]*string `json:"remoteEnv"`
	Mounts        []json.RawMessage  `json:"mounts"`
	Privileged    bool               `json:"privileged"`
	CapAdd        []string           `json:"capAdd"`
	SecurityOpt   []string           `json:"securityOpt"`
	Entrypoint    string             `json:"entrypoint"`
	OnCreate      json.RawMessage    `json:"onCreateCommand"`
	UpdateContent json.RawMessage    `json:"updateContentCommand"`
	PostCreate    json.RawMessage    `json:"postCreateCommand"`
	PostStart     json.RawMessage    `json:"postStartCommand"`
	PostAttach    json.RawMessage    `json:"postAttachCommand"`
}

// parseMetadata reads the label's value as the CLI does
// (internalGetImageMetadata0): a JSON array of entries, or one object.
// The CLI logs and ignores a label it cannot read; devbox refuses it, as
// it would the same text in a devcontainer.json.
func parseMetadata(label string) ([]metadataEntry, error) {
	if strings.TrimSpace(label) == "" {
		return nil, nil
	}
	var list []metadataEntry
	if err := json.Unmarshal([]byte(label), &list); err == nil {
		return list, nil
	}
	var one metadataEntry
	if err := json.Unmarshal([]byte(label), &one); err != nil {
		return nil, fmt.Errorf("the image's %s label: %w", MetadataLabel, err)
	}
	return []metadataEntry{one}, nil
}

// WithImageMetadata is the spec a devcontainer.json means over an image
// whose devcontainer.metadata label is label: the image's fragments
// first, the local file last, merged as the CLI's mergeConfiguration
// does (src/spec-node/imageMetadata.ts). s itself is not changed; a spec
// not read from a devcontainer.json is returned as it is.
func (s *Spec) WithImageMetadata(label string) (*Spec, error) {
	if s.devcontainer == nil {
		return s, nil
	}
	entries, err := parseMetadata(label)
	if err != nil || len(entries) == 0 {
		return s, err
	}
	local := s.devcontainer
	d := &dcReader{file: local.file, workspace: local.workspace}
	for i := range entries {
		// getImageMetadata substitutes the entries with the local
		// config's variables (localEnv, localWorkspaceFolder, …).
		if entries[i], err = d.expandEntry(entries[i], local.folder); err != nil {
			return nil, err
		}
	}
	if err := refuseUnsupported(entries); err != nil {
		return nil, err
	}
	out := *s
	if out.Lifecycle, err = mergeLifecycle(entries, local.lifecycle); err != nil {
		return nil, err
	}
	if !local.userFromDevbox {
		out.SSH.User = mergedUser(entries, local, s.SSH.User)
	}
	out.Env = mergedEnv(entries, local)
	mounts, err := imageMounts(entries, local)
	if err != nil {
		return nil, err
	}
	out.Mounts = append(slices.Clone(s.Mounts), mounts...)
	return &out, nil
}

// expandEntry substitutes every string of e, through JSON.
func (d *dcReader) expandEntry(e metadataEntry, folder string) (metadataEntry, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return e, err
	}
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		return e, err
	}
	expand := func(x any) any {
		if v, ok := x.(string); ok {
			return d.expand(v, folder)
		}
		return x
	}
	data, _ = json.Marshal(mapScalars(raw, expand))
	var out metadataEntry
	return out, json.Unmarshal(data, &out)
}

// refuseUnsupported refuses what devbox cannot honour. mergeConfiguration
// ORs privileged and unions capAdd and securityOpt over all entries; an
// entrypoint (a feature's) is run by the CLI at every start. devbox's
// container has a fixed capability set and profile and its own PID 1; an
// image's "init": true is met by that PID 1, which reaps orphans.
func refuseUnsupported(entries []metadataEntry) error {
	for _, e := range entries {
		from := "the image's " + MetadataLabel + " label"
		if e.ID != "" {
			from += " (feature " + e.ID + ")"
		}
		switch {
		case e.Privileged:
			return fmt.Errorf("%s asks for a privileged container: not supported (see [security] in customizations.devbox for devbox's opt-outs)", from)
		case len(e.CapAdd) > 0:
			return fmt.Errorf("%s asks for capAdd %v: not supported (see [security] in customizations.devbox for devbox's opt-outs)", from, e.CapAdd)
		case len(e.SecurityOpt) > 0:
			return fmt.Errorf("%s asks for securityOpt %v: not supported (see [security] in customizations.devbox)", from, e.SecurityOpt)
		case e.Entrypoint != "":
			return fmt.Errorf("%s asks to run %s at every start: not supported, devbox's init is the container's PID 1", from, e.Entrypoint)
		}
	}
	return nil
}

// mergeLifecycle is mergeLifecycleHooks for each hook: every entry's
// command in order, then the local file's.
func mergeLifecycle(entries []metadataEntry, local Lifecycle) (Lifecycle, error) {
	var l Lifecycle
	for _, h := range []struct {
		name  string
		raw   func(metadataEntry) json.RawMessage
		dst   *[]Command
		local []Command
	}{
		{"onCreateCommand", func(e metadataEntry) json.RawMessage { return e.OnCreate }, &l.OnCreate, local.OnCreate},
		{"updateContentCommand", func(e metadataEntry) json.RawMessage { return e.UpdateContent }, &l.UpdateContent, local.UpdateContent},
		{"postCreateCommand", func(e metadataEntry) json.RawMessage { return e.PostCreate }, &l.PostCreate, local.PostCreate},
		{"postStartCommand", func(e metadataEntry) json.RawMessage { return e.PostStart }, &l.PostStart, local.PostStart},
		{"postAttachCommand", func(e metadataEntry) json.RawMessage { return e.PostAttach }, &l.PostAttach, local.PostAttach},
	} {
		for _, e := range entries {
			raw := h.raw(e)
			if len(raw) == 0 || string(raw) == "null" {
				continue
			}
			cmds, err := parseCommands(raw)
			if err != nil {
				return l, fmt.Errorf("the image's %s label: %s: %w", MetadataLabel, h.name, err)
			}
			*h.dst = append(*h.dst, cmds...)
		}
		*h.dst = append(*h.dst, h.local...)
	}
	return l, nil
}

// mergedUser is the login: the last remoteUser of the entries and the
// local file, else the last containerUser (mergeConfiguration's
// reversed.find), else what the spec had.
func mergedUser(entries []metadataEntry, local *dcLocal, had string) string {
	remote, cont := "", ""
	for _, e := range entries {
		remote, cont = cmp.Or(e.RemoteUser, remote), cmp.Or(e.ContainerUser, cont)
	}
	remote, cont = cmp.Or(local.remoteUser, remote), cmp.Or(local.containerUser, cont)
	return cmp.Or(remote, cmp.Or(cont, had))
}

// mergedEnv is containerEnv and remoteEnv each merged as
// mergeConfiguration does (Object.assign: a later entry wins per key,
// the local file last), remoteEnv over containerEnv as sessions see
// them, then customizations.devbox's env.
func mergedEnv(entries []metadataEntry, local *dcLocal) map[string]string {
	cenv := map[string]string{}
	renv := map[string]*string{}
	for _, e := range entries {
		maps.Copy(cenv, e.ContainerEnv)
		maps.Copy(renv, e.RemoteEnv)
	}
	maps.Copy(cenv, local.containerEnv)
	maps.Copy(renv, local.remoteEnv)
	env := maps.Clone(cenv)
	for _, k := range slices.Sorted(maps.Keys(renv)) {
		v := renv[k]
		if v == nil {
			delete(env, k)
			continue
		}
		env[k] = containerEnvRE().ReplaceAllStringFunc(*v, func(s string) string {
			g := containerEnvRE().FindStringSubmatch(s)
			if cv, ok := cenv[g[1]]; ok {
				return cv
			}
			return s
		})
	}
	maps.Copy(env, local.devboxEnv)
	if len(env) == 0 {
		return nil
	}
	return env
}

// imageMounts applies mergeMounts' rule (a later mount with the same
// target replaces an earlier one) to the image's mounts and returns
// those that survive it, in the label's order: volumes and tmpfs, which
// devbox keeps itself. A host path chosen by an image's author is not one
// devbox lends (the CLI does): such a bind is refused, unless the
// devcontainer.json's own mounts name its target and so replace it.
func imageMounts(entries []metadataEntry, local *dcLocal) ([]container.Mount, error) {
	later := maps.Clone(local.mountTargets)
	if later == nil {
		later = map[string]bool{}
	}
	later[local.workspaceTarget] = true
	var out []container.Mount
	for i := len(entries) - 1; i >= 0; i-- {
		for j := len(entries[i].Mounts) - 1; j >= 0; j-- {
			m, err := imageMount(entries[i].Mounts[j])
			if err != nil {
				return nil, fmt.Errorf("the image's %s label: mounts: %w", MetadataLabel, err)
			}
			if later[m.Target] {
				continue
			}
			later[m.Target] = true
			from := "the image's " + MetadataLabel + " label"
			if id := entries[i].ID; id != "" {
				from += fmt.Sprintf(" (its entry %q)", id)
			}
			if m.Type == "" || m.Type == "bind" {
				return nil, fmt.Errorf("%s mounts %s at %s: devbox lends no host path an image names; "+
					"mount something at %s in the devcontainer.json's own mounts to replace it", from, m.Source, m.Target, m.Target)
			}
			if err := checkImageMount(m, devcontainerID(local.file)); err != nil {
				return nil, fmt.Errorf("%s: mounts: %w", from, err)
			}
			out = append(out, m)
		}
	}
	slices.Reverse(out)
	return out, nil
}

// checkImageMount holds a volume or tmpfs of the label to what a spec's
// own must be. A volume must be this workspace's own, its name holding
// its ${devcontainerId} (as the features that mount one name it): an
// image cannot reach another project's volume by naming it.
func checkImageMount(m container.Mount, id string) error {
	switch {
	case m.Type != "volume" && m.Type != "tmpfs":
		return fmt.Errorf("%s: type=%s is not supported: bind, volume or tmpfs", m.Target, m.Type)
	case m.Type == "volume":
		if err := volume.CheckName(m.Source); err != nil {
			return err
		}
		if !strings.Contains(m.Source, id) {
			return fmt.Errorf("volume %s at %s: an image's volume is mounted only if its name holds ${devcontainerId}, this workspace's own; "+
				"name the volume in the devcontainer.json's own mounts to share it", m.Source, m.Target)
		}
	case m.Source != "":
		return fmt.Errorf("%s: a tmpfs has no source", m.Target)
	}
	if !path.IsAbs(m.Target) || reservedTarget(path.Clean(m.Target)) {
		return fmt.Errorf("target %q: want an absolute path not under /proc, /sys or /dev", m.Target)
	}
	return nil
}

// imageMount reads a mount of the label: Docker's --mount string or an
// object (parseMount in the CLI). Options devbox does not read are passed
// over, as the CLI hands them to Docker; the type is checked by the
// caller.
func imageMount(raw json.RawMessage) (container.Mount, error) {
	var m container.Mount
	var s string
	if json.Unmarshal(raw, &s) == nil {
		m, _ = mountFields(s)
	} else {
		var err error
		if m, err = mountObject(raw); err != nil {
			return m, fmt.Errorf("%s: want a mount string or {source, target, type}", raw)
		}
	}
	if m.Target == "" {
		return m, fmt.Errorf("%s: a mount needs a target", raw)
	}
	m.Target = path.Clean(m.Target)
	return m, nil
}

// recordLocal keeps what WithImageMetadata needs of the file.
func (d *dcReader) recordLocal(s *Spec, dc *devcontainer, raw map[string]any) {
	var c struct {
		SSH struct {
			User string `json:"user"`
		} `json:"ssh"`
		Env map[string]string `json:"env"`
	}
	// Read already, strictly, as part of the spec: what is here is valid.
	_ = json.Unmarshal(dc.Customizations["devbox"], &c)
	devboxUser, devboxEnv := c.SSH.User != "", c.Env
	local := &dcLocal{
		file: d.file, workspace: d.workspace, folder: d.workspaceFolder(raw),
		remoteUser: dc.RemoteUser, containerUser: dc.ContainerUser, userFromDevbox: devboxUser,
		containerEnv: dc.ContainerEnv, remoteEnv: dc.RemoteEnv, devboxEnv: devboxEnv,
		lifecycle: s.Lifecycle, mountTargets: map[string]bool{}, labelEntry: d.labelEntry,
	}
	for _, m := range s.Mounts {
		local.mountTargets[m.Target] = true
	}
	if len(s.Mounts) > 0 {
		local.workspaceTarget = s.Mounts[0].Target
	}
	s.devcontainer = local
}

// labelKeys are the keys of a devcontainer.json that travel in the label
// of an image built from it (pickConfigProperties in the CLI's
// src/spec-node/imageMetadata.ts).
var labelKeys = []string{"onCreateCommand", "updateContentCommand", "postCreateCommand", "postStartCommand",
	"postAttachCommand", "waitFor", "customizations", "mounts", "containerEnv", "containerUser", "init", "privileged",
	"capAdd", "securityOpt", "remoteUser", "userEnvProbe", "remoteEnv", "overrideCommand", "portsAttributes",
	"otherPortsAttributes", "forwardPorts", "shutdownAction", "updateRemoteUserUID", "hostRequirements"}

// labelEntry picks labelKeys from a devcontainer.json read as JSON,
// before its variables are substituted: the CLI writes the raw config, so
// that ${localEnv:…} is the reader's, never this host's value.
func labelEntry(raw any) json.RawMessage {
	obj, _ := raw.(map[string]any)
	return pickEntry(obj, labelKeys)
}

// featureLabelKeys are the keys of a devcontainer-feature.json that go
// into the label of an image the feature is installed in
// (pickFeatureProperties in the CLI's imageMetadata.ts).
var featureLabelKeys = []string{"onCreateCommand", "updateContentCommand", "postCreateCommand", "postStartCommand",
	"postAttachCommand", "init", "privileged", "capAdd", "securityOpt", "entrypoint", "mounts", "customizations"}

// FeatureMetadata is a feature's fragment of the label: its id as the
// devcontainer.json names it (ref), and featureLabelKeys of its
// devcontainer-feature.json (meta, read strictly before this).
func FeatureMetadata(ref string, meta []byte) json.RawMessage {
	var obj map[string]any
	json.Unmarshal(meta, &obj)
	if obj == nil {
		obj = map[string]any{}
	}
	obj["id"] = ref
	return pickEntry(obj, append([]string{"id"}, featureLabelKeys...))
}

// pickEntry is the entry of obj's keys, nil for none.
func pickEntry(obj map[string]any, keys []string) json.RawMessage {
	picked := map[string]any{}
	for _, k := range keys {
		if v, ok := obj[k]; ok {
			picked[k] = v
		}
	}
	if len(picked) == 0 {
		return nil
	}
	data, _ := json.Marshal(picked)
	return data
}

// FromDevcontainer says whether s was read from a devcontainer.json.
func (s *Spec) FromDevcontainer() bool { return s.devcontainer != nil }

// ImageMetadata is the devcontainer.metadata label of an image built from
// s over a base labelled base, as the CLI's getDevcontainerMetadata makes
// it: the base's entries as they are, the features' (in install order),
// then the devcontainer.json's own, empty ones left out. A spec not read
// from a devcontainer.json passes the base's on.
func (s *Spec) ImageMetadata(base string, features ...json.RawMessage) (string, error) {
	if s.devcontainer != nil && s.devcontainer.labelEntry != nil {
		features = append(slices.Clone(features), s.devcontainer.labelEntry)
	}
	return JoinMetadata(base, features...)
}

// JoinMetadata is a label of the entries of label base followed by more,
// empty ones left out: a base's label with its features' fragments is
// what a devcontainer.json is merged over (WithImageMetadata), as the
// CLI merges the features' lifecycle commands after the image's.
func JoinMetadata(base string, more ...json.RawMessage) (string, error) {
	var entries []json.RawMessage
	if strings.TrimSpace(base) != "" {
		if err := json.Unmarshal([]byte(base), &entries); err != nil {
			entries = []json.RawMessage{json.RawMessage(base)}
		}
	}
	entries = append(entries, more...)
	entries = slices.DeleteFunc(entries, func(e json.RawMessage) bool {
		var m map[string]json.RawMessage
		return json.Unmarshal(e, &m) != nil || len(m) == 0
	})
	if len(entries) == 0 {
		return "", nil
	}
	data, err := json.Marshal(entries)
	return string(data), err
}

// mapScalars replaces, in place, every value of a decoded JSON tree that
// is neither a list nor an object by f's answer for it.
func mapScalars(v any, f func(any) any) any {
	switch v := v.(type) {
	case []any:
		for i := range v {
			v[i] = mapScalars(v[i], f)
		}
		return v
	case map[string]any:
		for k := range v {
			v[k] = mapScalars(v[k], f)
		}
		return v
	}
	return f(v)
}
