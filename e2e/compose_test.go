package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestComposeReading: what a compose file says reaches devbox's reading
// of the devcontainer.json as Docker Compose means it: profiles (off
// unless COMPOSE_PROFILES names them), extends, runServices with what
// they depend on, the limits (the short keys and deploy's); and a key
// devbox cannot honour is one line naming the file, the service and the
// key.
func TestComposeReading(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".devcontainer")
	os.MkdirAll(dir, 0o755)
	write := func(name, body string) { os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644) }
	write("docker-compose.yml", `services:
  app:
    image: debian:bookworm
  base:
    image: redis:7
    environment: {FROM_BASE: "1"}
  cache:
    extends: base
    environment: {OWN: "2"}
    deploy: {resources: {limits: {cpus: "0.5", memory: 256M, pids: 50}}}
  db:
    image: postgres:16
    depends_on: [cache]
    mem_limit: 512m
  debug:
    image: busybox
    profiles: [debug]
`)
	write("devcontainer.json", `{"dockerComposeFile": "docker-compose.yml", "service": "app", "runServices": ["db"]}`)
	config := func(env ...string) (map[string]any, result) {
		t.Helper()
		cmd := execCommand(devboxBin, "config", "-f", "devcontainer.json")
		cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
		r := runCmd(t, "", cmd)
		var got map[string]any
		toml.Decode(r.stdout, &got)
		return got, r
	}
	got, r := config()
	if r.code != 0 {
		t.Fatalf("config: %s", r.stderr)
	}
	services, _ := got["services"].(map[string]any)
	if names := keys(services); strings.Join(names, " ") != "cache db" {
		t.Errorf("runServices [db] runs %v, want db and what it depends on (cache)", names)
	}
	cache, _ := services["cache"].(map[string]any)
	env, _ := cache["env"].(map[string]any)
	if env["FROM_BASE"] != "1" || env["OWN"] != "2" || cache["mem_limit"] != "268435456" || cache["pids_limit"] != int64(50) || cache["cpus"] != 0.5 {
		t.Errorf("cache (extends base, deploy's limits): %v", cache)
	}
	if db, _ := services["db"].(map[string]any); db["mem_limit"] != "536870912" {
		t.Errorf("db's mem_limit: %v", db)
	}
	write("devcontainer.json", `{"dockerComposeFile": "docker-compose.yml", "service": "app"}`)
	if got, _ := config(); strings.Contains(strings.Join(keys(got["services"].(map[string]any)), " "), "debug") {
		t.Error("a service of a profile not asked for runs")
	}
	if got, _ := config("COMPOSE_PROFILES=debug"); !strings.Contains(strings.Join(keys(got["services"].(map[string]any)), " "), "debug") {
		t.Error("COMPOSE_PROFILES=debug does not run the debug service")
	}
	write("docker-compose.yml", "services:\n  app:\n    image: debian:bookworm\n  db:\n    image: postgres\n    privileged: true\n    cap_add: [NET_ADMIN]\n")
	_, r = config()
	want := "docker-compose.yml: service db: devbox cannot honour cap_add, privileged"
	if r.code == 0 || !strings.Contains(r.stderr, want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
		t.Errorf("privileged: want one line with %q, got %d %q", want, r.code, r.stderr)
	}
}
