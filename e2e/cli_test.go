package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestInitAndPlan(t *testing.T) {
	dir := t.TempDir()
	state := t.TempDir()
	r := devbox(t, dir, "init", "--template", "centos7-node")
	if r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "devbox.toml")); err != nil {
		t.Fatal(err)
	}
	r = devbox(t, dir, "--root", state, "plan")
	if r.code != 0 {
		t.Fatalf("plan: exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	stepRE := regexp.MustCompile(`^\[\d+/\d+\] \S+ +[0-9a-f]{12}  (built|not built)  .+`)
	for _, l := range lines {
		if !stepRE.MatchString(l) {
			t.Errorf("plan line %q is not a step", l)
		}
	}
	for _, want := range []string{"base centos:7", "node 12.9.1", "packages (auto) gcc gcc-c++ pcre-devel", "npm registry"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan does not show %q:\n%s", want, r.stdout)
		}
	}
	// init refuses to overwrite, unless forced.
	if r := devbox(t, dir, "init"); r.code != 1 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("init over an existing spec: exit %d, %q", r.code, r.stderr)
	}
	if r := devbox(t, dir, "init", "--force", "--template", "alpine-node"); r.code != 0 {
		t.Errorf("init --force: exit %d, %s", r.code, r.stderr)
	}
	if r := devbox(t, dir, "init", "--template", "nope", "x"); r.code != 2 || !strings.Contains(r.stderr, "centos7-node") {
		t.Errorf("unknown template: exit %d, %q", r.code, r.stderr)
	}
}

func TestTemplatesList(t *testing.T) {
	r := devbox(t, t.TempDir(), "templates")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, name := range []string{"centos7-node", "debian-node", "rocky9-node", "ubuntu-node", "alpine-node"} {
		if !regexp.MustCompile(`(?m)^` + name + ` +\S`).MatchString(r.stdout) {
			t.Errorf("templates does not list %s with a description:\n%s", name, r.stdout)
		}
	}
}

// TestMalformedSpecs: each bad spec gives one devbox.toml:LINE: KEY: line
// on stderr and exit 1, never a panic.
func TestMalformedSpecs(t *testing.T) {
	cases := []struct {
		name, spec, want string
	}{
		{"unknown key", "bse = \"centos:7\"\n", "devbox.toml:1: bse: unknown key"},
		{"wrong type", "base = \"centos:7\"\nports = 2222\n", "devbox.toml:2: ports: incompatible types"},
		{"bad port", "base = \"centos:7\"\nports = [\"80:70000\"]\n", "devbox.toml:2: ports: "},
		{"duplicate port", "base = \"centos:7\"\nports = [\"80:80\", \"80:81\"]\n", "devbox.toml:2: ports: host port 80 is used twice"},
		{"port equal to ssh.port", "base = \"centos:7\"\nports = [\"2222:22\"]\n", "devbox.toml:2: ports: host port 2222 is used twice (also by ssh.port)"},
		{"bad node version", "base = \"centos:7\"\n\n[node]\nversion = \"twelve\"\n", "devbox.toml:4: node.version: "},
		{"bad memory", "base = \"centos:7\"\n[resources]\nmemory = \"lots\"\n", "devbox.toml:3: resources.memory: "},
		{"missing mount source", "base = \"centos:7\"\n[[mounts]]\nsource = \"./gone\"\ntarget = \"/w\"\n", "devbox.toml:3: mounts.0.source: "},
		{"relative mount target", "base = \"centos:7\"\n[[mounts]]\nsource = \".\"\ntarget = \"w\"\n", "devbox.toml:4: mounts.0.target: "},
		{"bad cache repository", "base = \"centos:7\"\n[cache]\nimage = \"Not A/Repo\"\n", "devbox.toml:3: cache.image: "},
		{"bad userns", "base = \"centos:7\"\n[security]\nuserns = \"no\"\n", "devbox.toml:3: "},
		{"syntax error", "base = \"centos:7\n", "devbox.toml:1: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(c.spec), 0o644)
			r := devbox(t, dir, "--root", t.TempDir(), "plan")
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine") {
				t.Fatalf("panicked:\n%s", r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "devbox: "+c.want) {
				t.Errorf("stderr = %q, want one line starting %q", r.stderr, "devbox: "+c.want)
			}
		})
	}
}

func TestUsageExitCodes(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"bogus"}, {"plan", "--bogus"}, {"logs"}, {"exec", "only-name"}, {"image", "bogus"}, {"version", "extra"}} {
		if r := devbox(t, dir, args...); r.code != 2 {
			t.Errorf("devbox %v: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
	if r := devbox(t, dir, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "devbox ") {
		t.Errorf("version: exit %d, %q", r.code, r.stdout)
	}
	if r := devbox(t, dir, "completion", "bash"); r.code != 0 || !strings.Contains(r.stdout, "devbox") {
		t.Errorf("completion bash: exit %d", r.code)
	}
	// Every command of the design has help.
	for _, c := range []string{"init", "templates", "plan", "build", "up", "down", "rm", "ps", "exec", "ssh", "ssh-config", "logs", "run", "image", "volume", "push", "kube", "version"} {
		if r := devbox(t, dir, c, "--help"); r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%s --help: exit %d", c, r.code)
		}
	}
	for _, c := range []string{"pull", "ls", "rm", "prune", "import"} {
		if r := devbox(t, dir, "image", c, "--help"); r.code != 0 {
			t.Errorf("image %s --help: exit %d", c, r.code)
		}
	}
}
