package spec

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
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

	// A compose file's services (devcontainer_compose.go).
	DockerComposeFile json.RawMessage `json:"dockerComposeFile"`
	Service           json.RawMessage `json:"service"`
	RunServices       json.RawMessage `json:"runServices"`

	// Refused: what devbox does not do.
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
	d.labelEntry = labelEntry(raw)
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
	// labelEntry is what the file gives the metadata label of an image
	// built from it, as written (see Spec.ImageMetadata).
	labelEntry json.RawMessage
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
	if len(dc.DockerComposeFile) > 0 {
		if dc.Image != "" || dc.Build != nil || dc.DockerFile != "" {
			return nil, d.errorf("dockerComposeFile", "the compose file's service is the image: drop image and build")
		}
		if err := d.compose(dc, raw, m); err != nil {
			return nil, err
		}
	} else if err := d.base(dc, m); err != nil {
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
	if u := cmp.Or(dc.RemoteUser, dc.ContainerUser); u != "" {
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
	return mapScalars(v, func(x any) any {
		if f, ok := x.(float64); ok && f == float64(int64(f)) {
			return int64(f)
		}
		return x
	})
}
