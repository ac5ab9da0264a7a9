package spec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	container "github.com/devbox/devbox/runtime"
)

// TestImageMetadataLabel: the label of an image built from a
// devcontainer.json is the base's entries, then the file's own keys an
// image carries, as written (${localEnv:…} unsubstituted, as the CLI's
// getDevcontainerMetadata writes the raw config); empty entries go.
func TestImageMetadataLabel(t *testing.T) {
	t.Setenv("DC_LABEL_SECRET", "s3cret")
	p := workspace(t, `{
	"name": "x", "image": "debian:12",
	"remoteUser": "root",
	"containerEnv": {"TOKEN": "${localEnv:DC_LABEL_SECRET}"},
	"postCreateCommand": "echo made",
	"forwardPorts": [3000],
	"customizations": {"vscode": {"extensions": ["a.b"]}}
}`, nil)
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ImageMetadata(`[{"id":"base","remoteUser":"vscode"},{}]`, json.RawMessage(`{"id":"./feat"}`))
	if err != nil {
		t.Fatal(err)
	}
	var entries []map[string]any
	if err := json.Unmarshal([]byte(got), &entries); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	want := []map[string]any{{"id": "base", "remoteUser": "vscode"}, {"id": "./feat"}, {"remoteUser": "root",
		"containerEnv": map[string]any{"TOKEN": "${localEnv:DC_LABEL_SECRET}"}, "postCreateCommand": "echo made",
		"forwardPorts": []any{float64(3000)}, "customizations": map[string]any{"vscode": map[string]any{"extensions": []any{"a.b"}}}}}
	if !reflect.DeepEqual(entries, want) {
		t.Errorf("label\n%s\nwant %v", got, want)
	}
	toml := &Spec{}
	if got, _ := toml.ImageMetadata(`{"remoteUser":"vscode"}`); got != `[{"remoteUser":"vscode"}]` {
		t.Errorf("a devbox.toml passes the base's label on: %s", got)
	}
}

// TestFeatureLabel: a feature's fragment is its id as the config names
// it and the keys the CLI picks; containerEnv, options and the rest stay
// out (the CLI bakes containerEnv into the image as ENV).
func TestFeatureLabel(t *testing.T) {
	got := FeatureMetadata("ghcr.io/x/features/node:1", []byte(`{"id": "node", "version": "1.2.0", "options": {"version": {"default": "lts"}},
		"containerEnv": {"NVM_DIR": "/usr/local/share/nvm"}, "postCreateCommand": "node --version",
		"customizations": {"vscode": {"extensions": ["dbaeumer.vscode-eslint"]}}}`))
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": "ghcr.io/x/features/node:1", "postCreateCommand": "node --version",
		"customizations": map[string]any{"vscode": map[string]any{"extensions": []any{"dbaeumer.vscode-eslint"}}}}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("%s", got)
	}
}

// TestImageLabelMounts: the label's volumes and tmpfs mounts join the
// spec (a later one, or the file's own, at the same target replaces an
// earlier one, as the CLI's mergeMounts); a bind the file does not
// replace is refused, since its host path is the image author's choice.
func TestImageLabelMounts(t *testing.T) {
	p := workspace(t, `{"image": "debian:12", "mounts": ["source=mine,target=/cache,type=volume"]}`, nil)
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	label := `[{"mounts": ["source=dind-${devcontainerId},target=/var/lib/docker,type=volume", "source=old-${devcontainerId},target=/x,type=volume"]},
		{"mounts": [{"type": "tmpfs", "target": "/x"}, "source=theirs,target=/cache,type=volume"]}]`
	got, err := s.WithImageMetadata(label)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Mounts); n != 4 || got.Mounts[1].Source != "mine" || got.Mounts[2].Type != "volume" ||
		got.Mounts[2].Target != "/var/lib/docker" || len(got.Mounts[2].Source) < 20 || got.Mounts[3] != (container.Mount{Target: "/x", Type: "tmpfs"}) {
		t.Errorf("mounts %+v", got.Mounts)
	}
	for label, want := range map[string]string{
		`[{"mounts": ["source=/etc,target=/host-etc,type=bind"]}]`:                "devbox lends no host path",
		`[{"mounts": ["source=../up,target=/v,type=volume"]}]`:                    "not a volume name",
		`[{"mounts": ["source=v-${devcontainerId},target=/proc/x,type=volume"]}]`: "not under /proc",
		`[{"id": "evil", "mounts": ["source=ssh-keys,target=/k,type=volume"]}]`:   `(its entry "evil"): mounts: volume ssh-keys at /k: an image's volume is mounted only if its name holds ${devcontainerId}`,
	} {
		if _, err := s.WithImageMetadata(label); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", label, err, want)
		}
	}
	if _, err := s.WithImageMetadata(`[{"mounts": ["source=/etc,target=/cache,type=bind"]}]`); err != nil {
		t.Errorf("a bind the file replaces: %v", err)
	}
}
