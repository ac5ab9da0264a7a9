package builder

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/devbox/devbox/devenv/spec"
)

// TestOrderFeatures: dependsOn and installsAfter order features; the
// file's order stands otherwise; a missing dependency or a cycle is an
// error.
func TestOrderFeatures(t *testing.T) {
	f := func(ref string, after ...string) *Feature {
		return &Feature{Feature: spec.Feature{Ref: ref}, Meta: FeatureMeta{InstallsAfter: after}}
	}
	a := f("ghcr.io/x/a:1", "ghcr.io/x/c")
	b := f("ghcr.io/x/b:2")
	c := f("ghcr.io/x/c:1.2")
	c.Meta.DependsOn = map[string]json.RawMessage{"ghcr.io/x/b:2": nil}
	got, err := orderFeatures([]*Feature{a, b, c})
	if err != nil || !slices.Equal(got, []*Feature{b, c, a}) {
		t.Errorf("order %v %v", refs(got), err)
	}
	d := f("ghcr.io/x/d:1")
	d.Meta.DependsOn = map[string]json.RawMessage{"ghcr.io/x/missing:1": nil}
	if _, err := orderFeatures([]*Feature{d}); err == nil {
		t.Error("a missing dependency was accepted")
	}
	x, y := f("r/x:1", "r/y"), f("r/y:1", "r/x")
	if _, err := orderFeatures([]*Feature{x, y}); err == nil {
		t.Error("a cycle was accepted")
	}
}

func refs(fs []*Feature) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Ref)
	}
	return out
}

func TestOptionVar(t *testing.T) {
	for in, want := range map[string]string{"version": "VERSION", "installZsh": "INSTALLZSH", "node-gyp.deps": "NODE_GYP_DEPS"} {
		if got := optionVar(in); got != want {
			t.Errorf("optionVar(%q) = %q, want %q", in, got, want)
		}
	}
}
