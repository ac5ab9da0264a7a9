package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/tailscale/hujson"
)

// A devcontainer.json is read as the spec it means: its keys become
// devbox.toml's (image or build → base and [dockerfile], forwardPorts and
// appPort → ports on 127.0.0.1, containerEnv and remoteEnv → env,
// remoteUser → [ssh] user, mounts and the workspace → [[mounts]],
// workspaceFolder → workdir), customizations.devbox adds devbox's own
// keys, and the result is validated as a devbox.toml is, its errors
// pointing at the devcontainer.json's line and key. The lifecycle
// commands go to Spec.Lifecycle.

// FindDevcontainer is the devcontainer.json of the workspace dir (in
// .devcontainer/ or as .devcontainer.json), or "".
func FindDevcontainer(dir string) string {
	for _, n := range []string{".devcontainer/devcontainer.json", ".devcontainer.json"} {
		if fi, err := os.Stat(filepath.Join(dir, n)); err == nil && fi.Mode().IsRegular() {
			return filepath.Join(dir, n)
		}
	}
	return ""
}

// IsDevcontainer says path names a devcontainer.json.
func IsDevcontainer(path string) bool {
	b := filepath.Base(path)
	return b == "devcontainer.json" || b == ".devcontainer.json"
}

// devcontainer are the keys devbox reads. Those of editors and of the
// Docker CLI's UI are accepted and ignored; those that change what runs
// and that devbox does not do are refused (notSupported).
type devcontainer struct {
	Name            string                     `json:"name"`
	Image           string                     `json:"image"`
	Build           *dcBuild                   `json:"build"`
	DockerFile      string                     `json:"dockerFile"`
	Context         string                     `json:"context"`
	ForwardPorts    []json.RawMessage          `json:"forwardPorts"`
	AppPort         json.RawMessage            `json:"appPort"`
	ContainerEnv    map[string]string          `json:"containerEnv"`
	RemoteEnv       map[string]*string         `json:"remoteEnv"`
	RemoteUser      string                     `json:"remoteUser"`
	ContainerUser   string                     `json:"containerUser"`
	Mounts          []json.RawMessage          `json:"mounts"`
	WorkspaceMount  string                     `json:"workspaceMount"`
	WorkspaceFolder string                     `json:"workspaceFolder"`
	OnCreate        json.RawMessage            `json:"onCreateCommand"`
	UpdateContent   json.RawMessage            `json:"updateContentCommand"`
	PostCreate      json.RawMessage            `json:"postCreateCommand"`
	PostStart       json.RawMessage            `json:"postStartCommand"`
	PostAttach      json.RawMessage            `json:"postAttachCommand"`
	Features        map[string]json.RawMessage `json:"features"`
	Customizations  map[string]json.RawMessage `json:"customizations"`

	// Accepted and ignored: the editor's and the Docker CLI's concerns.
	Schema               string          `json:"$schema"`
	PortsAttributes      json.RawMessage `json:"portsAttributes"`
	OtherPortsAttributes json.RawMessage `json:"otherPortsAttributes"`
	HostRequirements     json.RawMessage `json:"hostRequirements"`
	ShutdownAction       string          `json:"shutdownAction"`
	WaitFor              string          `json:"waitFor"`
	UserEnvProbe         string          `json:"userEnvProbe"`
	UpdateRemoteUserUID  *bool           `json:"updateRemoteUserUID"`
	OverrideCommand      *bool           `json:"overrideCommand"`
	Init                 *bool           `json:"init"`

	// Refused: what devbox does not do.
	DockerComposeFile           json.RawMessage `json:"dockerComposeFile"`
	Service                     json.RawMessage `json:"service"`
	RunServices                 json.RawMessage `json:"runServices"`
	RunArgs                     json.RawMessage `json:"runArgs"`
	Privileged                  json.RawMessage `json:"privileged"`
	CapAdd                      json.RawMessage `json:"capAdd"`
	SecurityOpt                 json.RawMessage `json:"securityOpt"`
	InitializeCommand           json.RawMessage `json:"initializeCommand"`
	OverrideFeatureInstallOrder json.RawMessage `json:"overrideFeatureInstallOrder"`
}

type dcBuild struct {
	Dockerfile string            `json:"dockerfile"`
	Context    string            `json:"context"`
	Args       map[string]string `json:"args"`
	Target     string            `json:"target"`
	CacheFrom  json.RawMessage   `json:"cacheFrom"`
	Options    json.RawMessage   `json:"options"`
}

// notSupported are the refused keys, with what to do instead.
var notSupported = []struct{ key, why string }{
	{"dockerComposeFile", "devbox runs one container; use image or build"},
	{"service", "devbox runs one container; use image or build"},
	{"runServices", "devbox runs one container"},
	{"runArgs", "docker run flags do not apply; devbox's own settings go in customizations.devbox"},
	{"privileged", "see [security] in customizations.devbox for devbox's opt-outs"},
	{"capAdd", "see [security] in customizations.devbox for devbox's opt-outs"},
	{"securityOpt", "see [security] in customizations.devbox for devbox's opt-outs"},
	{"initializeCommand", "devbox does not run commands on the host"},
	{"overrideFeatureInstallOrder", "devbox orders features by their installsAfter and dependsOn"},
	{"build.cacheFrom", "devbox caches steps itself; see [cache] in customizations.devbox"},
	{"build.options", "docker build flags do not apply"},
}

// dcVarRE matches ${localEnv:NAME}, ${localEnv:NAME:default} and the
// workspace variables.
var (
	dcVarRE        = lazyRE(`\$\{([A-Za-z]+)(?::([^}:]*))?(?::([^}]*))?\}`)
	containerEnvRE = lazyRE(`\$\{containerEnv:([^}:]+)(?::([^}]*))?\}`)
	lineRE         = lazyRE(`line (\d+)`)
)

// parseDevcontainer reads a devcontainer.json as a spec.
func parseDevcontainer(file string, data []byte) (*Spec, error) {
	d, dc, raw, err := readDevcontainer(file, data)
	if err != nil {
		return nil, err
	}
	return d.spec(dc, raw)
}

// Devcontainer is what a devcontainer.json says besides the devbox.toml
// it means (TOML, as a document's keys, paths absolute): its lifecycle
// commands and features, which devbox.toml has no keys for.
type Devcontainer struct {
	TOML      map[string]any
	Lifecycle Lifecycle
	Features  []Feature
}

// ReadDevcontainer reads the devcontainer.json at file.
func ReadDevcontainer(file string) (*Devcontainer, error) {
	data, err := ReadFile(file)
	if err != nil {
		return nil, err
	}
	d, dc, raw, err := readDevcontainer(file, data)
	if err != nil {
		return nil, err
	}
	out := &Devcontainer{}
	if out.TOML, err = d.toml(dc, raw); err != nil {
		return nil, err
	}
	if out.Lifecycle, err = d.lifecycle(dc); err != nil {
		return nil, err
	}
	out.Features, err = d.features(dc)
	return out, err
}

// readDevcontainer parses and strictly decodes a devcontainer.json, its
// variables substituted.
func readDevcontainer(file string, data []byte) (*dcReader, *devcontainer, map[string]any, error) {
	shown := displayName(file)
	if err := checkJSONShape(data); err != nil {
		return nil, nil, nil, asShapeError(shown, err)
	}
	v, err := hujson.Parse(data)
	if err != nil {
		return nil, nil, nil, &Error{File: shown, Line: syntaxLine(err), Msg: err.Error()}
	}
	lines := map[string]int{}
	jsonLines(newLineIndex(data), &v, "", lines)
	d := &dcReader{file: file, shown: shown, lines: lines, workspace: WorkspaceOf(file)}
	v.Standardize()
	var raw any
	if err := json.Unmarshal(v.Pack(), &raw); err != nil {
		return nil, nil, nil, d.errorf("", "%v", err)
	}
	if raw, err = d.substitute(raw); err != nil {
		return nil, nil, nil, err
	}
	if err := d.exactKeys(raw.(map[string]any)); err != nil {
		return nil, nil, nil, err
	}
	std, _ := json.Marshal(raw)
	var dc devcontainer
	dec := json.NewDecoder(bytes.NewReader(std))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&dc); err != nil {
		return nil, nil, nil, d.decodeError(err)
	}
	return d, &dc, raw.(map[string]any), nil
}

// dcReader converts one devcontainer.json.
type dcReader struct {
	file, shown string
	lines       map[string]int // JSON key path → line
	workspace   string         // the folder the devcontainer.json is for
	// origin maps a devbox.toml key made to the devcontainer.json key
	// it came from, for errors.
	origin map[string]string
}

func (d *dcReader) errorf(key, format string, args ...any) error {
	return &Error{File: d.shown, Line: d.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

// line is key's line, or its closest parent's, or 1.
func (d *dcReader) line(key string) int {
	for k := key; k != ""; k = parentKey(k) {
		if l, ok := d.lines[k]; ok {
			return l
		}
	}
	return 1
}

func parentKey(k string) string {
	if i := strings.LastIndex(k, "."); i >= 0 {
		return k[:i]
	}
	return ""
}

// WorkspaceOf is the folder a devcontainer.json is for: the one holding
// .devcontainer/ or .devcontainer.json. A config in a subfolder of
// .devcontainer (.devcontainer/python/devcontainer.json, one of several
// the editor offers) is the project's too: the CLI and the editor take
// the project root as its workspace folder, not the subfolder.
func WorkspaceOf(file string) string {
	dir := filepath.Dir(file)
	if filepath.Base(dir) == ".devcontainer" {
		return filepath.Dir(dir)
	}
	if up := filepath.Dir(dir); filepath.Base(up) == ".devcontainer" {
		return filepath.Dir(up)
	}
	return dir
}

// workspaceFolder is where the workspace is in the container: the
// workspaceFolder key, its variables expanded, or /workspaces/NAME.
func (d *dcReader) workspaceFolder(raw map[string]any) string {
	if f, ok := raw["workspaceFolder"].(string); ok && f != "" {
		return d.expand(f, "")
	}
	return "/workspaces/" + filepath.Base(d.workspace)
}

// substitute replaces the variables the spec defines in every string,
// except in other tools' customizations, whose variables are theirs.
func (d *dcReader) substitute(raw any) (any, error) {
	top, ok := raw.(map[string]any)
	if !ok {
		return nil, d.errorf("", "not a JSON object")
	}
	folder := d.workspaceFolder(top)
	var walk func(key string, v any) any
	walk = func(key string, v any) any {
		switch v := v.(type) {
		case string:
			return d.expand(v, folder)
		case []any:
			for i := range v {
				v[i] = walk(key+"."+strconv.Itoa(i), v[i])
			}
		case map[string]any:
			for k := range v {
				sub := strings.TrimPrefix(key+"."+k, ".")
				if key == "customizations" && k != "devbox" {
					continue
				}
				v[k] = walk(sub, v[k])
			}
		}
		return v
	}
	return walk("", top), nil
}

// expand replaces ${localEnv:X[:default]}, ${localWorkspaceFolder},
// ${containerWorkspaceFolder}, their Basename forms and ${devcontainerId}
// in s. Others are left as they are, as the Dev Container CLI leaves
// them; ${containerEnv:X} is resolved with the image's environment.
func (d *dcReader) expand(s, folder string) string {
	return dcVarRE().ReplaceAllStringFunc(s, func(m string) string {
		g := dcVarRE().FindStringSubmatch(m)
		switch g[1] {
		case "localEnv", "env":
			if v, ok := os.LookupEnv(g[2]); ok {
				return v
			}
			return g[3]
		case "localWorkspaceFolder":
			return d.workspace
		case "localWorkspaceFolderBasename":
			return filepath.Base(d.workspace)
		case "containerWorkspaceFolder":
			if folder != "" {
				return folder
			}
		case "containerWorkspaceFolderBasename":
			if folder != "" {
				return path.Base(folder)
			}
		case "devcontainerId":
			sum := sha256.Sum256([]byte(d.file))
			return hex.EncodeToString(sum[:16])
		}
		return m
	})
}

// exactKeys refuses keys that are not devcontainer.json's as written:
// encoding/json would take "IMAGE" for "image".
func (d *dcReader) exactKeys(raw map[string]any) error {
	for _, c := range []struct {
		prefix string
		obj    any
		typ    reflect.Type
	}{{"", raw, reflect.TypeFor[devcontainer]()}, {"build.", raw["build"], reflect.TypeFor[dcBuild]()}} {
		obj, ok := c.obj.(map[string]any)
		if !ok {
			continue
		}
		known := map[string]bool{}
		for i := range c.typ.NumField() {
			name, _, _ := strings.Cut(c.typ.Field(i).Tag.Get("json"), ",")
			known[name] = true
		}
		for k := range obj {
			if !known[k] {
				return d.errorf(c.prefix+k, "unknown key")
			}
		}
	}
	return nil
}

// decodeError points a strict decoder's error at its key.
func (d *dcReader) decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return d.errorf(te.Field, "want %s, not a JSON %s", te.Type, te.Value)
	}
	msg := err.Error()
	if k, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		k, _ = strconv.Unquote(k)
		for p := range d.lines {
			if p == k || strings.HasSuffix(p, "."+k) {
				return d.errorf(p, "unknown key")
			}
		}
		return d.errorf(k, "unknown key")
	}
	return d.errorf("", "%s", msg)
}

// spec turns dc into a devbox.toml, parses that as a spec, and points
// its errors back at dc's keys.
func (d *dcReader) spec(dc *devcontainer, raw map[string]any) (*Spec, error) {
	m, err := d.toml(dc, raw)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(m); err != nil {
		return nil, d.errorf("", "%v", err)
	}
	p := &parser{file: d.file, shown: d.shown, loc: newLocator(buf.Bytes()), dir: d.workspace}
	s, err := p.parse(buf.Bytes())
	if err != nil {
		return nil, d.pointBack(err)
	}
	if s.Lifecycle, err = d.lifecycle(dc); err != nil {
		return nil, err
	}
	if s.Features, err = d.features(dc); err != nil {
		return nil, err
	}
	d.recordLocal(s, dc, raw)
	s.Title = strings.TrimSpace(dc.Name)
	if lock := filepath.Join(filepath.Dir(d.file), "devcontainer-lock.json"); fileExists(lock) {
		s.FeaturesLock = lock
	} else if lock := filepath.Join(filepath.Dir(d.file), ".devcontainer-lock.json"); fileExists(lock) {
		s.FeaturesLock = lock
	}
	return s, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// features are dc's features in the file's order: options as the
// strings install.sh gets (true, 20, …); a local one ("./name") is the
// folder beside the devcontainer.json.
func (d *dcReader) features(dc *devcontainer) ([]Feature, error) {
	var out []Feature
	for ref, raw := range dc.Features {
		key := "features." + ref
		f := Feature{Ref: ref, Line: d.line(key), Options: map[string]string{}}
		switch {
		case strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../"):
			f.Dir = filepath.Join(filepath.Dir(d.file), ref)
		case strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://"):
			return nil, d.errorf(key, "a feature from a tarball URL is not supported: publish it to a registry, or use a local folder")
		}
		var opts map[string]any
		if err := json.Unmarshal(raw, &opts); err != nil {
			// A string or a boolean instead of options: the CLI
			// (getFeatureValueObject) gives a string to the version
			// option if the feature has one, and otherwise keeps only
			// the defaults; that is settled once the feature is read.
			var value string
			var on bool
			switch {
			case json.Unmarshal(raw, &value) == nil:
				f.Value = &value
			case json.Unmarshal(raw, &on) == nil:
			default:
				return nil, d.errorf(key, "want an object of options, a version string or a boolean")
			}
		}
		for k, v := range opts {
			switch v := v.(type) {
			case string:
				f.Options[k] = v
			case bool, float64:
				f.Options[k] = fmt.Sprint(v)
			default:
				return nil, d.errorf(key+"."+k, "want a string, a boolean or a number")
			}
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Feature) int { return a.Line - b.Line })
	return out, nil
}

// toml is the devbox.toml dc means, as keys.
func (d *dcReader) toml(dc *devcontainer, raw map[string]any) (map[string]any, error) {
	for _, ns := range notSupported {
		if d.has(raw, ns.key) {
			return nil, d.errorf(ns.key, "not supported: %s", ns.why)
		}
	}
	d.origin = map[string]string{}
	m := map[string]any{}
	if err := d.base(dc, m); err != nil {
		return nil, err
	}
	if err := d.ports(dc, m); err != nil {
		return nil, err
	}
	if err := d.env(dc, m); err != nil {
		return nil, err
	}
	if err := d.mounts(dc, m, raw); err != nil {
		return nil, err
	}
	if u := cmpOr(dc.RemoteUser, dc.ContainerUser); u != "" {
		m["ssh"] = map[string]any{"user": u}
		d.origin["ssh.user"] = map[bool]string{true: "remoteUser", false: "containerUser"}[dc.RemoteUser != ""]
	}
	if err := d.customizations(dc, m); err != nil {
		return nil, err
	}
	if _, ok := m["name"]; !ok {
		m["name"] = DefaultName(d.workspace)
	}
	return m, nil
}

// has says the raw document sets key (dotted) to something (an empty
// object or array sets nothing).
func (d *dcReader) has(raw map[string]any, key string) bool {
	var v any = raw
	for _, k := range strings.Split(key, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[k]; !ok {
			return false
		}
	}
	switch v := v.(type) {
	case nil:
		return false
	case map[string]any:
		return len(v) > 0
	case []any:
		return len(v) > 0
	}
	return true
}

// pointBack turns an error about the devbox.toml made into one about the
// devcontainer.json key it came from.
func (d *dcReader) pointBack(err error) error {
	var se *Error
	if !errors.As(err, &se) {
		return err
	}
	key := se.Key
	for k := key; k != ""; k = parentKey(k) {
		if o, ok := d.origin[k]; ok {
			key = o + strings.TrimPrefix(se.Key, k)
			break
		}
	}
	return &Error{File: d.shown, Line: d.line(key), Key: key, Msg: se.Msg}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// base is image, or build's Dockerfile (paths are the devcontainer.json's
// folder's).
func (d *dcReader) base(dc *devcontainer, m map[string]any) error {
	here := filepath.Dir(d.file)
	dockerfile, context, from := dc.DockerFile, dc.Context, "dockerFile"
	var args map[string]string
	var target string
	if dc.Build != nil {
		dockerfile, context, args, target, from = cmpOr(dc.Build.Dockerfile, dockerfile), cmpOr(dc.Build.Context, context), dc.Build.Args, dc.Build.Target, "build.dockerfile"
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
		df := map[string]any{"context": filepath.Join(here, cmpOr(context, "."))}
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
	var ports []string
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
	var list []map[string]any
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
			var o struct {
				Source, Target, Type string
				ReadOnly             bool `json:"readonly"`
			}
			if err := json.Unmarshal(rawMount, &o); err != nil {
				return d.errorf(key, "want a mount string or {source, target, type}")
			}
			if o.Type != "" && o.Type != "bind" {
				return d.errorf(key, "type %q is not supported: only bind mounts (a volume is a host directory here)", o.Type)
			}
			mt = map[string]any{"source": o.Source, "target": o.Target}
			if o.ReadOnly {
				mt["readonly"] = true
			}
		}
		d.origin[fmt.Sprintf("mounts.%d", len(list))] = key
		list = append(list, mt)
	}
	m["mounts"] = list
	m["workdir"] = folder
	d.origin["workdir"] = "workspaceFolder"
	return nil
}

// parseMountString reads Docker's --mount syntax: source=…,target=…
// [,type=bind][,readonly].
func parseMountString(s string) (map[string]any, error) {
	mt := map[string]any{}
	for _, f := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "source", "src":
			mt["source"] = v
		case "target", "destination", "dst":
			mt["target"] = v
		case "type":
			if v != "bind" {
				return nil, fmt.Errorf("type=%s is not supported: only bind mounts", v)
			}
		case "readonly", "ro":
			mt["readonly"] = v == "" || v == "true" || v == "1"
		case "consistency", "bind-propagation":
		default:
			return nil, fmt.Errorf("%q: not a mount option devbox knows", f)
		}
	}
	if mt["source"] == nil || mt["target"] == nil {
		return nil, fmt.Errorf("%q: a mount needs source= and target=", s)
	}
	return mt, nil
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

// jsonLines records the line of every object member and array element.
func jsonLines(data lineIndex, v *hujson.Value, prefix string, out map[string]int) {
	switch t := v.Value.(type) {
	case *hujson.Object:
		for _, m := range t.Members {
			name := m.Name.Value.(hujson.Literal).String()
			key := strings.TrimPrefix(prefix+"."+name, ".")
			out[key] = data.lineAt(m.Name.StartOffset)
			jsonLines(data, &m.Value, key, out)
		}
	case *hujson.Array:
		for i := range t.Elements {
			key := strings.TrimPrefix(prefix+"."+strconv.Itoa(i), ".")
			out[key] = data.lineAt(t.Elements[i].StartOffset)
			jsonLines(data, &t.Elements[i], key, out)
		}
	}
}

// syntaxLine is the line hujson's syntax error names, or 1.
func syntaxLine(err error) int {
	if m := lineRE().FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 1
}

// integral turns JSON's float64 numbers that are whole into int64, so
// that TOML sees an integer where devbox.toml has one.
func integral(v any) any {
	switch v := v.(type) {
	case float64:
		if v == float64(int64(v)) {
			return int64(v)
		}
	case []any:
		for i := range v {
			v[i] = integral(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = integral(v[k])
		}
	}
	return v
}
