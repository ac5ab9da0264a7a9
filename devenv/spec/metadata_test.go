package spec

import (
	"encoding/json"
	"reflect"
	"testing"
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
