package builder

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/rootfs"
	"github.com/devbox/devbox/templates"
)

// TestTemplatePlans: every embedded template plans at least base, user,
// config and one step of its own.
func TestTemplatePlans(t *testing.T) {
	for _, tmpl := range templates.List() {
		s, err := spec.Parse(filepath.Join(t.TempDir(), spec.FileName), tmpl.Content)
		if err != nil {
			t.Fatalf("%s: %v", tmpl.Name, err)
		}
		if n := len(mustPlan(t, s, "").Steps); n < 4 {
			t.Errorf("%s: plan of %d steps", tmpl.Name, n)
		}
	}
}

func TestNPMTokenNeverInAKey(t *testing.T) {
	t.Setenv("TEAM_NPM_TOKEN", "tok-123")
	s := mustParse(t, t.TempDir(), "base = \"x\"\n[npm]\nregistry = \"https://npm.corp.example/team/\"\ntoken_env = \"TEAM_NPM_TOKEN\"\n")
	for _, st := range mustPlan(t, s, "").Steps {
		if strings.Contains(st.Canonical, "tok-123") {
			t.Errorf("the token is in step %s", st.Kind)
		}
	}
}

func TestPlanKeys(t *testing.T) {
	dir := t.TempDir()
	load := func(node, run string) *Plan {
		s, err := spec.Parse(filepath.Join(dir, spec.FileName), []byte(`base = "debian:bookworm"
[packages]
install = ["gcc"]
[node]
version = "`+node+`"
[[run]]
command = "`+run+`"
`))
		if err != nil {
			t.Fatal(err)
		}
		return mustPlan(t, s, "")
	}
	a, b, c := load("12.9.1", "true"), load("14.0.0", "true"), load("12.9.1", "false")
	kinds := []StepKind{StepBase, StepPackages, StepNode, StepUser, StepConfig, StepRun}
	if len(a.Steps) != len(kinds) {
		t.Fatalf("steps = %d, want %d", len(a.Steps), len(kinds))
	}
	for i, k := range kinds {
		if a.Steps[i].Kind != k {
			t.Errorf("step %d = %s, want %s", i, a.Steps[i].Kind, k)
		}
	}
	// A Node change keeps base and packages, changes node and every later step.
	for i := range a.Steps {
		same := a.Steps[i].Key == b.Steps[i].Key
		if want := i < 2; same != want {
			t.Errorf("node change: step %d (%s) same key = %v, want %v", i, a.Steps[i].Kind, same, want)
		}
	}
	// A run change keeps everything before it.
	for i := range a.Steps {
		same := a.Steps[i].Key == c.Steps[i].Key
		if want := i < len(a.Steps)-1; same != want {
			t.Errorf("run change: step %d same key = %v, want %v", i, same, want)
		}
	}
	if a.Steps[5].Command != "true" {
		t.Errorf("run step command = %q", a.Steps[5].Command)
	}
	if load("12.9.1", "true").Top() != a.Top() {
		t.Error("plan keys are not deterministic")
	}
	if a.Steps[0].Key == mustPlan(t, mustParse(t, dir, `base = "debian:bookworm"`), "sha256:abc").Steps[0].Key {
		t.Error("the base digest does not change the base key")
	}
}

func mustParse(t *testing.T, dir, content string) *spec.Spec {
	t.Helper()
	s, err := spec.Parse(filepath.Join(dir, spec.FileName), []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPasswordNotInPlan(t *testing.T) {
	dir := t.TempDir()
	s := mustParse(t, dir, "base = \"x\"\n[ssh]\npassword = \"hunter2-secret\"\n")
	for _, st := range mustPlan(t, s, "").Steps {
		if strings.Contains(st.Canonical, "hunter2") || strings.Contains(st.Summary, "hunter2") {
			t.Errorf("step %s shows the password: %q", st.Kind, st.Canonical)
		}
	}
}

// mustPlan is s's plan with its base known by id ("" for not resolved).
func mustPlan(t *testing.T, s *spec.Spec, id string) *Plan {
	t.Helper()
	p, err := NewPlan(s, func(rootfs.Ref) (*rootfs.Image, error) {
		if id == "" {
			return nil, nil
		}
		return &rootfs.Image{Digest: id}, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOneDigestPerTag: a tag that moves while the plan resolves (here,
// each look-up answers a new digest) is resolved once: two stages FROM
// it and a COPY --from it get the same image, as in BuildKit, which
// resolves each image reference of a build once.
func TestOneDigestPerTag(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM img:tag AS a\nRUN true\nFROM img:tag\nCOPY --from=img:tag /x /x\nCOPY --from=a /y /y\n"), 0o644)
	s := mustParse(t, dir, "base = \"dockerfile:Dockerfile\"\n")
	calls := 0
	p, err := NewPlan(s, func(ref rootfs.Ref) (*rootfs.Image, error) {
		calls++
		return &rootfs.Image{Digest: fmt.Sprintf("sha256:%d", calls)}, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, st := range p.Steps {
		if st.Image != nil {
			ids = append(ids, st.Image.Digest)
		}
	}
	if calls != 1 || len(ids) != 3 || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("%d look-ups, images %q", calls, ids)
	}
}
