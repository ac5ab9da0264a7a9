package builder

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestFeatureLabel: a feature's fragment is its id as the config names
// it and the keys the CLI picks; containerEnv, options and the rest stay
// out (the CLI bakes containerEnv into the image as ENV).
func TestFeatureLabel(t *testing.T) {
	got := featureLabel("ghcr.io/x/features/node:1", []byte(`{"id": "node", "version": "1.2.0", "options": {"version": {"default": "lts"}},
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
