package spec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	container "github.com/devbox/devbox/runtime"
)

func TestServices(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "db"), 0o755)
	os.WriteFile(filepath.Join(dir, "db", "Containerfile"), []byte("FROM scratch\n"), 0o644)
	s := mustParse(t, dir, `name = "app"
base = "debian:12"
ports = ["8080:80"]

[services.cache]
image = "redis:7"
command = "redis-server --appendonly 'yes please'"
depends_on = { db = { condition = "service_healthy" }, init = { condition = "service_completed_successfully" } }
restart = "on-failure:3"
stop_signal = "INT"
stop_grace_period = "2s"

[services.db]
build = { context = "db", dockerfile = "Containerfile", args = { V = "16" } }
volumes = ["pgdata:/var/lib/postgresql/data", "./db:/docker-entrypoint-initdb.d:ro"]
ports = ["5432:5432"]
env = { POSTGRES_PASSWORD = "pw" }
healthcheck = { test = ["CMD-SHELL", "pg_isready -U postgres"], interval = "2s", retries = 10 }

[services.init]
image = "busybox"
entrypoint = ["/bin/true"]
cpus = 0.5
mem_limit = "64m"
pids_limit = 100
`)
	if want := []string{"db", "init", "cache"}; !reflect.DeepEqual(s.ServiceOrder, want) {
		t.Errorf("order %v, want %v", s.ServiceOrder, want)
	}
	if l := s.Services["init"].Spec.Limits(); l.CPUs != 0.5 || l.MemoryBytes != 64<<20 || l.Pids != 100 {
		t.Errorf("init's limits: %+v", l)
	}
	cache := s.Services["cache"]
	if want := []string{"redis-server", "--appendonly", "yes please"}; !reflect.DeepEqual([]string(cache.Command), want) {
		t.Errorf("command %q, want %q", cache.Command, want)
	}
	if cache.MaxRestarts != 3 || cache.Grace != 2*time.Second || StopSignal(cache.StopSignal) != 2 {
		t.Errorf("restart %d grace %s signal %q", cache.MaxRestarts, cache.Grace, cache.StopSignal)
	}
	db := s.Services["db"]
	if db.Spec.Base != "dockerfile:"+filepath.Join(dir, "db", "Containerfile") || db.Spec.Dockerfile.Args["V"] != "16" || db.Spec.Dockerfile.Context != filepath.Join(dir, "db") {
		t.Errorf("db's build: %q %+v", db.Spec.Base, db.Spec.Dockerfile)
	}
	wantMounts := []container.Mount{
		{Source: "pgdata", Target: "/var/lib/postgresql/data", Type: "volume"},
		{Source: filepath.Join(dir, "db"), Target: "/docker-entrypoint-initdb.d", Readonly: true},
	}
	if !reflect.DeepEqual(db.Spec.Mounts, wantMounts) {
		t.Errorf("db's mounts %+v, want %+v", db.Spec.Mounts, wantMounts)
	}
	if len(db.Spec.PortMaps) != 1 || db.Spec.PortMaps[0].HostIP != "127.0.0.1" || db.Spec.Hostname != "db" || db.Spec.Env["POSTGRES_PASSWORD"] != "pw" {
		t.Errorf("db's container: %+v host %q env %v", db.Spec.PortMaps, db.Spec.Hostname, db.Spec.Env)
	}
	p, err := db.Healthcheck.Probe()
	if err != nil || !reflect.DeepEqual(p.Args, []string{"/bin/sh", "-c", "pg_isready -U postgres"}) || p.Interval != 2*time.Second || p.Retries != 10 || p.Timeout != 30*time.Second {
		t.Errorf("probe %+v %v", p, err)
	}
	if db.Spec.Security.Seccomp != "default" || !db.Spec.UserNS() {
		t.Errorf("db does not get the environment's isolation: %+v", db.Spec.Security)
	}
}

func TestServiceErrors(t *testing.T) {
	head := "base = \"x\"\n"
	cases := []struct {
		name, spec string
		line       int
		key, msg   string
	}{
		{"cycle", "[services.a]\nimage = \"x\"\ndepends_on = [\"b\"]\n[services.b]\nimage = \"x\"\ndepends_on = [\"a\"]\n", 4, "services.a.depends_on", "a -> b -> a"},
		{"self", "[services.a]\nimage = \"x\"\ndepends_on = [\"a\"]\n", 4, "services.a.depends_on", `no other service is called "a"`},
		{"missing", "[services.a]\nimage = \"x\"\ndepends_on = [\"b\"]\n", 4, "services.a.depends_on", `"b"`},
		{"unknown key", "[services.a]\nimage = \"x\"\nprivileged = true\n", 4, "services.a.privileged", "unknown key"},
		{"unknown condition", "[services.a]\nimage = \"x\"\n[services.b]\nimage = \"x\"\ndepends_on = { a = { condition = \"soon\" } }\n", 6, "services.b.depends_on.a", "not one of"},
		{"healthy without check", "[services.a]\nimage = \"x\"\n[services.b]\nimage = \"x\"\ndepends_on = { a = { condition = \"service_healthy\" } }\n", 6, "services.b.depends_on.a", "no healthcheck"},
		{"image and build", "[services.a]\nimage = \"x\"\nbuild = \".\"\n", 2, "services.a", "either image or build"},
		{"neither", "[services.a]\nuser = \"x\"\n", 2, "services.a", "either image or build"},
		{"bad name", "[services.A]\nimage = \"x\"\n", 2, "services.A", "not a valid service name"},
		{"port twice", "ports = [\"8080:80\"]\n[services.a]\nimage = \"x\"\nports = [\"8080:81\"]\n", 5, "services.a.ports", "used twice"},
		{"anonymous volume", "[services.a]\nimage = \"x\"\nvolumes = [\"/data\"]\n", 4, "services.a.volumes", "needs a name"},
		{"bad restart", "[services.a]\nimage = \"x\"\nrestart = \"on-failure:0\"\n", 4, "services.a.restart", "positive"},
		{"bad signal", "[services.a]\nimage = \"x\"\nstop_signal = \"SIGNOPE\"\n", 4, "services.a.stop_signal", "not a signal"},
		{"bad alias", "[services.a]\nimage = \"x\"\naliases = [\"A_b\"]\n", 4, "services.a.aliases", "not a valid host name"},
		{"alias of another", "[services.a]\nimage = \"x\"\naliases = [\"b\"]\n[services.b]\nimage = \"x\"\n", 4, "services.a.aliases", "another service"},
		{"restart without command", "restart = \"always\"\n", 2, "restart", "no command"},
		{"bad restart of the environment", "command = \"x\"\nrestart = \"sometimes\"\n", 3, "restart", "not one of"},
		{"no network", "[network]\nmode = \"none\"\n[services.a]\nimage = \"x\"\n", 5, "services", "bridge"},
	}
	for _, c := range cases {
		_, err := Parse(filepath.Join(t.TempDir(), FileName), []byte(head+c.spec))
		var se *Error
		if !errors.As(err, &se) || se.Line != c.line || se.Key != c.key || !strings.Contains(se.Msg, c.msg) {
			t.Errorf("%s: got %v, want line %d key %q msg %q", c.name, err, c.line, c.key, c.msg)
		}
	}
}
