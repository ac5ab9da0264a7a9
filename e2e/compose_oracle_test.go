package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	shlex "github.com/anmitsu/go-shlex"
	"sigs.k8s.io/yaml"
)

// TestComposeOracle: for each compose-based template of the Dev Container
// templates, devbox's reading of the devcontainer.json (devbox config)
// and Docker Compose's of its compose file (docker-compose config) agree
// on every service: image or build, command, environment, volumes, ports,
// restart, healthcheck, depends_on and network_mode. The service devbox
// logs into is the environment itself, the others its [services].
func TestComposeOracle(t *testing.T) {
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("no docker-compose, the oracle (make test-deps installs it)")
	}
	dirs, _ := filepath.Glob("testdata/compose-templates/*/.devcontainer")
	if len(dirs) < 15 {
		t.Fatalf("%d templates, want 15", len(dirs))
	}
	for _, dir := range dirs {
		dir, _ = filepath.Abs(dir)
		name := filepath.Base(filepath.Dir(dir))
		t.Run(name, func(t *testing.T) { compareCompose(t, dir) })
	}
}

// compareCompose compares devbox's and Docker Compose's readings of the
// devcontainer.json in dir.
func compareCompose(t *testing.T, dir string) {
	var dc struct {
		Service           string
		DockerComposeFile any
	}
	data, _ := os.ReadFile(filepath.Join(dir, "devcontainer.json"))
	if err := json.Unmarshal(stripComments(data), &dc); err != nil {
		t.Fatal(err)
	}
	files := words(dc.DockerComposeFile)
	if files == nil {
		files = []string{fmt.Sprint(dc.DockerComposeFile)}
	}
	// The Dev Container CLI's project name (getProjectName).
	project := filepath.Base(filepath.Dir(dir)) + "_devcontainer"
	if first := filepath.Dir(filepath.Join(dir, files[0])); first != dir {
		project = filepath.Base(first)
	}
	args := []string{"-p", project}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	cmd := exec.Command("docker-compose", append(args, "config")...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-compose config: %v", err)
	}
	var oracle struct {
		Services map[string]map[string]any `json:"services"`
	}
	if err := yaml.Unmarshal(out, &oracle); err != nil {
		t.Fatal(err)
	}
	r := devbox(t, dir, "config", "-f", filepath.Join(dir, "devcontainer.json"))
	if r.code != 0 {
		// The one template that mounts Docker's socket, absent here.
		if strings.Contains(r.stderr, "/var/run/docker.sock does not exist") {
			return
		}
		t.Fatalf("devbox config: %s", r.stderr)
	}
	var got map[string]any
	if _, err := toml.Decode(r.stdout, &got); err != nil {
		t.Fatalf("devbox config prints no TOML: %v\n%s", err, r.stdout)
	}
	services, _ := got["services"].(map[string]any)
	for svcName, want := range oracle.Services {
		if svcName == dc.Service {
			compareApp(t, got, want, project)
			continue
		}
		svc, ok := services[svcName].(map[string]any)
		if !ok {
			t.Errorf("%s: not among devbox's services %v", svcName, keys(services))
			continue
		}
		for _, d := range serviceDiffs(svc, want, project) {
			t.Errorf("%s: %s", svcName, d)
		}
	}
	if len(services) != len(oracle.Services)-1 {
		t.Errorf("devbox has services %v, compose %v", keys(services), keys(oracle.Services))
	}
}

// serviceDiffs are where a devbox service table and compose's service
// differ.
func serviceDiffs(svc, want map[string]any, project string) []string {
	var diffs []string
	diff := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			diffs = append(diffs, fmt.Sprintf("%s: devbox %v, compose %v", key, a, b))
		}
	}
	if b, ok := want["build"].(map[string]any); ok {
		got, _ := svc["build"].(map[string]any)
		diff("build", fmt.Sprint(got["dockerfile"]), filepath.Join(fmt.Sprint(b["context"]), fmt.Sprint(b["dockerfile"])))
	} else {
		diff("image", svc["image"], want["image"])
	}
	diff("command", words(svc["command"]), words(want["command"]))
	diff("env", strMap(svc["env"]), strMap(want["environment"]))
	diff("volumes", mountsOf(svc["volumes"], ""), mountsOf(want["volumes"], project))
	diff("restart", svc["restart"], want["restart"])
	diff("healthcheck", healthOf(svc["healthcheck"]), healthOf(want["healthcheck"]))
	diff("depends_on", dependsOf(svc["depends_on"]), dependsOf(want["depends_on"]))
	diff("ports", len(asList(svc["ports"])), len(asList(want["ports"])))
	return diffs
}

// compareApp compares the environment with the service it is made of.
func compareApp(t *testing.T, env, want map[string]any, project string) {
	base := fmt.Sprint(env["base"])
	if b, ok := want["build"].(map[string]any); ok {
		if w := "dockerfile:" + filepath.Join(fmt.Sprint(b["context"]), fmt.Sprint(b["dockerfile"])); base != w {
			t.Errorf("app base %s, compose %s", base, w)
		}
	} else if base != fmt.Sprint(want["image"]) {
		t.Errorf("app base %s, compose image %v", base, want["image"])
	}
	gotEnv := strMap(env["env"])
	for k, v := range strMap(want["environment"]) {
		if gotEnv[k] != v {
			t.Errorf("app env %s=%q, compose %q", k, gotEnv[k], v)
		}
	}
	var mounts []any
	for _, m := range asList(env["mounts"]) {
		mt := m.(map[string]any)
		s := fmt.Sprintf("%s:%s", mt["source"], mt["target"])
		if mt["readonly"] == true {
			s += ":ro"
		}
		mounts = append(mounts, s)
	}
	if got, w := mountsOf(mounts, ""), mountsOf(want["volumes"], project); !reflect.DeepEqual(got, w) {
		t.Errorf("app mounts %v, compose %v", got, w)
	}
	if got, w := words(env["command"]), words(want["command"]); !reflect.DeepEqual(got, w) {
		t.Errorf("app command %q, compose %q", got, w)
	}
	net, _ := env["network"].(map[string]any)
	if w, ok := want["network_mode"]; ok && net["mode"] != w {
		t.Errorf("app network %v, compose %v", net["mode"], w)
	}
	if got, w := dependsOf(env["depends_on"]), dependsOf(want["depends_on"]); !reflect.DeepEqual(got, w) && want["network_mode"] == nil {
		t.Errorf("app depends_on %v, compose %v", got, w)
	}
}

// mountsOf are SOURCE:TARGET[:ro] strings, modes but ro dropped; with a
// project (compose's side), named volumes get its scope, as Docker
// Compose names them when it makes them.
func mountsOf(v any, project string) []string {
	var out []string
	for _, m := range asList(v) {
		parts := strings.Split(fmt.Sprint(m), ":")
		ro := false
		if len(parts) == 3 {
			ro = parts[2] == "ro"
			parts = parts[:2]
		}
		src := parts[0]
		if project != "" && !strings.HasPrefix(src, "/") {
			src = project + "_" + src
		}
		s := src + ":" + parts[1]
		if ro {
			s += ":ro"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// healthOf is a healthcheck's test and timing, as strings.
func healthOf(v any) map[string]string {
	h, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	test := words(h["test"])
	if s, ok := h["test"].(string); ok {
		test = []string{"CMD-SHELL", s} // compose's meaning of a string
	}
	out := map[string]string{"test": fmt.Sprint(test)}
	for _, k := range []string{"interval", "timeout", "retries", "start_period"} {
		if x, ok := h[k]; ok {
			out[k] = fmt.Sprint(x)
		}
	}
	return out
}

// dependsOf is depends_on as names and conditions, service_started for
// a plain list.
func dependsOf(v any) map[string]string {
	out := map[string]string{}
	switch d := v.(type) {
	case []any:
		for _, n := range d {
			out[fmt.Sprint(n)] = "service_started"
		}
	case map[string]any:
		for n, c := range d {
			switch c := c.(type) {
			case map[string]any:
				out[n] = fmt.Sprint(c["condition"])
			default:
				out[n] = fmt.Sprint(c)
			}
		}
	}
	return out
}

// words is a command as its words: a string split as compose splits it.
func words(v any) []string {
	switch c := v.(type) {
	case string:
		w, _ := shlex.Split(c, true)
		return w
	case []any:
		var out []string
		for _, x := range c {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return nil
}

func strMap(v any) map[string]string {
	out := map[string]string{}
	if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			out[k] = fmt.Sprint(x)
		}
	}
	return out
}

func asList(v any) []any {
	switch l := v.(type) {
	case []any:
		return l
	case []map[string]any:
		var out []any
		for _, m := range l {
			out = append(out, m)
		}
		return out
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// stripComments drops the // lines of a devcontainer.json.
func stripComments(data []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "//") {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}
