package builder

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/devbox/devbox/devenv/spec"
)

// TestOrderFeatures: dependsOn and installsAfter order features in
// rounds, and each round is sorted as the CLI sorts it (the file's order
// plays no part); a missing dependency or a cycle is an error.
func TestOrderFeatures(t *testing.T) {
	f := func(ref string, after ...string) *Feature {
		return &Feature{Feature: spec.Feature{Ref: ref}, Meta: FeatureMeta{InstallsAfter: after}}
	}
	a := f("ghcr.io/x/a:1", "ghcr.io/x/c")
	b := f("ghcr.io/x/b:2")
	c := f("ghcr.io/x/c:1.2")
	c.Meta.DependsOn = map[string]json.RawMessage{"ghcr.io/x/b:2": nil}
	got, err := orderFeatures([]*Feature{a, b, c}, "/ws/.devcontainer")
	if err != nil || !slices.Equal(got, []*Feature{b, c, a}) {
		t.Errorf("order %v %v", refs(got), err)
	}
	// One round, sorted: registry and namespace, then id.
	z, y, w := f("ghcr.io/x/zeta:1"), f("ghcr.io/x/Yak:1"), f("docker.io/w/alpha:1")
	if got, _ := orderFeatures([]*Feature{z, y, w}, "/ws/.devcontainer"); !slices.Equal(got, []*Feature{w, y, z}) {
		t.Errorf("one round: %v", refs(got))
	}
	// Local ones: "./zeta" in installsAfter is the folder beside the file.
	local := func(name string, after ...string) *Feature {
		l := f("./"+name, after...)
		l.Dir = "/ws/.devcontainer/" + name
		return l
	}
	lz, la := local("zeta"), local("alpha", "./zeta")
	if got, _ := orderFeatures([]*Feature{lz, la}, "/ws/.devcontainer"); !slices.Equal(got, []*Feature{lz, la}) {
		t.Errorf("installsAfter a local folder: %v", refs(got))
	}
	if got, _ := orderFeatures([]*Feature{z, local("beta")}, "/ws/.devcontainer"); got[0].Ref != "./beta" {
		t.Errorf("local and registry features: by their names in the file: %v", refs(got))
	}
	d := f("ghcr.io/x/d:1")
	d.Meta.DependsOn = map[string]json.RawMessage{"ghcr.io/x/missing:1": nil}
	if _, err := orderFeatures([]*Feature{d}, "/ws"); err == nil {
		t.Error("a missing dependency was accepted")
	}
	x, x2 := f("r/x:1", "r/y"), f("r/y:1", "r/x")
	if _, err := orderFeatures([]*Feature{x, x2}, "/ws"); err == nil {
		t.Error("a cycle was accepted")
	}
}

func TestCollate(t *testing.T) {
	for _, c := range [][2]string{{"./a", "a"}, {"a", "B"}, {"b", "B"}, {"a:1", "a1"}, {"ghcr.io/x", "ghcr.iox"}, {"1", "a"},
		{"a_b", "a-b"}, {"a-b", "a.b"}, {"a.b", "a/b"}, {"a:b", "a.b"}} {
		if collate(c[0], c[1]) >= 0 || collate(c[1], c[0]) <= 0 {
			t.Errorf("%q should come before %q", c[0], c[1])
		}
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
