package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/testenv"
)

// dataDockerfile is PostgreSQL and Redis from Debian's archive, over the
// Debian base a team would pull: the image of both services, and of the
// environment (its clients), built once.
const dataDockerfile = `ARG BASE
FROM ${BASE}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/*
# The app reaches the database over the services' network, as a compose
# file's app service would.
RUN sed -i 's/scram-sha-256$/trust/' /etc/postgresql/15/main/pg_hba.conf \
 && echo "host all all 0.0.0.0/0 trust" >> /etc/postgresql/15/main/pg_hba.conf \
 && mkdir /data && chown redis:redis /data
`

const dataSpec = `name = "svc-data"
base = "dockerfile:Dockerfile"

[dockerfile.args]
BASE = %[1]q

[ssh]
port = %[2]d

[services.db]
build = { context = ".", args = { BASE = %[1]q } }
user = "postgres"
command = ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/15/main", "-c", "config_file=/etc/postgresql/15/main/postgresql.conf", "-c", "listen_addresses=*"]
volumes = ["svc-data-pg:/var/lib/postgresql"]
stop_signal = "SIGINT"
healthcheck = { test = "pg_isready -h 127.0.0.1", interval = "1s", retries = 30 }

[services.cache]
build = { context = ".", args = { BASE = %[1]q } }
user = "redis"
command = "redis-server --appendonly yes --dir /data --protected-mode no"
volumes = ["svc-data-redis:/data"]
restart = "on-failure"
healthcheck = { test = ["CMD", "redis-cli", "ping"], interval = "1s" }
depends_on = { db = { condition = "service_healthy" } }
`

// TestServicesPostgresRedis: real PostgreSQL and Redis from Debian's
// packages as services. The environment reaches both by name; the cache
// waits for the database's pg_isready; a row and a key written survive
// down and up in their named volumes; a crashed Redis restarts.
func TestServicesPostgresRedis(t *testing.T) {
	testenv.NeedRoot(t)
	dir, root := t.TempDir(), t.TempDir()
	linkBase(t, root)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dataDockerfile), 0o644)
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(fmt.Sprintf(dataSpec, debianRegistry(t), freePort(t))), 0o644)
	db := func(args ...string) result { return devbox(t, dir, append([]string{"--root", root}, args...)...) }
	t.Cleanup(func() { db("rm", "svc-data") })
	noLeftovers := leftoverCheck(root)

	if r := db("up"); r.code != 0 {
		t.Fatalf("up: %d %s", r.code, tail(r.stderr))
	}
	sh := func(script string) result { return db("exec", "svc-data", "--", "/bin/sh", "-c", script) }
	if r := sh(`psql -h db -U postgres -qAt -c "CREATE TABLE t (x int); INSERT INTO t VALUES (42);" && redis-cli -h cache SET k kept`); r.code != 0 || !strings.Contains(r.stdout, "OK") {
		t.Fatalf("write through the services' names: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// Redis killed: on-failure brings it back.
	if r := db("exec", "--service", "cache", "svc-data", "--", "/bin/sh", "-c", `kill -9 $(cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(redis-server)" {print $1}')`); r.code != 0 {
		t.Errorf("exec --service cache as redis: %d %s%s", r.code, r.stdout, r.stderr)
	}
	restarted := func() bool {
		return strings.Contains(db("logs", "--service", "cache", "svc-data").stdout, "exited with code 137; restart 1") &&
			strings.Contains(sh("redis-cli -h cache ping").stdout, "PONG")
	}
	if !waitFor(10*time.Second, restarted) {
		t.Errorf("redis did not restart: %s", db("logs", "--service", "cache", "svc-data").stdout)
	}
	if r := db("down"); r.code != 0 {
		t.Fatalf("down: %s", r.stderr)
	}
	noLeftovers(t)
	if r := db("up"); r.code != 0 {
		t.Fatalf("up again: %s", tail(r.stderr))
	}
	r := sh(`psql -h db -U postgres -qAt -c "SELECT x FROM t" && redis-cli -h cache GET k`)
	if r.code != 0 || r.stdout != "42\nkept\n" {
		t.Errorf("after down/up: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := db("logs", "--service", "db", "svc-data"); !strings.Contains(r.stdout, "database system is ready to accept connections") {
		t.Errorf("db's log has no start of PostgreSQL:\n%s", tail(r.stdout))
	}
	db("down")
	noLeftovers(t)
	// The same services from a devcontainer.json's compose file, over the
	// images this build made.
	composeDataEnv(t, root)
	noLeftovers(t)
}

// composeFile is app + db with a named volume, as the Dev Container
// templates write them: the app in the database's network, BASE from the
// project's .env.
const composeFile = `services:
  app:
    build:
      context: ..
      args:
        BASE: ${BASE}
    command: ["sh", "-c", "echo \"app started as $$(id -un)\" > /tmp/app.log; exec sleep infinity"]
    network_mode: service:db
    volumes:
      - ../..:/workspaces:cached
  db:
    build:
      context: ..
      args:
        BASE: ${BASE}
    user: postgres
    command: ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/15/main", "-c", "config_file=/etc/postgresql/15/main/postgresql.conf", "-c", "listen_addresses=*"]
    volumes:
      - pgdata:/var/lib/postgresql
    stop_signal: SIGINT
    healthcheck:
      test: pg_isready -h 127.0.0.1
      interval: 1s
      retries: 30
volumes:
  pgdata:
`

// composeDataEnv brings up a devcontainer.json with dockerComposeFile in
// a project of its own, whose Dockerfile the services build: one command
// starts both, the app reaches the database on localhost (its network)
// and by name, and a row outlives down and up in the named volume.
func composeDataEnv(t *testing.T, root string) {
	dir := filepath.Join(t.TempDir(), "proj")
	dc := filepath.Join(dir, ".devcontainer")
	os.MkdirAll(dc, 0o755)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dataDockerfile), 0o644)
	os.WriteFile(filepath.Join(dc, ".env"), []byte("BASE="+debianRegistry(t)+"\n"), 0o644)
	os.WriteFile(filepath.Join(dc, "docker-compose.yml"), []byte(composeFile), 0o644)
	os.WriteFile(filepath.Join(dc, "devcontainer.json"), []byte(fmt.Sprintf(`{
	"dockerComposeFile": "docker-compose.yml",
	"service": "app",
	"workspaceFolder": "/workspaces/${localWorkspaceFolderBasename}",
	"customizations": {"devbox": {"ssh": {"port": %d}}}
}`, freePort(t))), 0o644)
	name := filepath.Base(dir)
	db := func(args ...string) result { return devbox(t, dc, append([]string{"--root", root}, args...)...) }
	t.Cleanup(func() { db("rm", name) })
	up := func() {
		t.Helper()
		if r := db("up", "-f", "devcontainer.json"); r.code != 0 {
			t.Fatalf("up the compose file: %d %s", r.code, tail(r.stderr))
		}
	}
	up()
	psql := func(sql string) result {
		return db("exec", name, "--", "psql", "-h", "localhost", "-U", "postgres", "-qAt", "-c", sql)
	}
	if r := psql("CREATE TABLE c (x text); INSERT INTO c VALUES ('composed')"); r.code != 0 {
		t.Fatalf("the app does not reach the database on localhost: %s", r.stderr)
	}
	if r := db("exec", name, "--", "pg_isready", "-h", "db"); r.code != 0 {
		t.Errorf("the app does not reach the database by name: %s%s", r.stdout, r.stderr)
	}
	if r := db("exec", name, "--", "cat", "/tmp/app.log"); r.stdout != "app started as root\n" {
		t.Errorf("the app service's command did not run beside the SSH server: %q %s", r.stdout, r.stderr)
	}
	if r := db("exec", name, "--", "pwd"); strings.TrimSpace(r.stdout) != "/workspaces/"+name {
		t.Errorf("the login is not in the workspace folder: %q", r.stdout)
	}
	if r := db("down", name); r.code != 0 {
		t.Fatalf("down: %s", r.stderr)
	}
	if r := db("ps"); strings.Contains(r.stdout, name+"/db") || !strings.Contains(r.stdout, "stopped") {
		t.Errorf("after down: %s", r.stdout)
	}
	up()
	if r := psql("SELECT x FROM c"); r.stdout != "composed\n" {
		t.Errorf("the row did not outlive down/up in the named volume: %q %s", r.stdout, r.stderr)
	}
	if r := db("volume", "ls"); !strings.Contains(r.stdout, name+"_devcontainer_pgdata") {
		t.Errorf("no volume named as Docker Compose would: %s", r.stdout)
	}
	db("down", name)
}
