// Command composebench brings one devcontainer.json with a compose file
// (an app, PostgreSQL and Redis from Debian's packages, each database
// with a healthcheck and a named volume, the app waiting for both to be
// healthy) up with devbox and with Debian's docker-compose on Docker
// 20.10, in interleaved rounds, from warm stores (images built, volumes
// made): up until every service is healthy. It then prints the idle
// memory of devbox's supervisors (each service's init) beside Docker's
// (each container's containerd-shim).
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/devbox/devbox/internal/benchmark"
	"github.com/devbox/devbox/internal/testbase"
	"github.com/devbox/devbox/internal/testenv"
)

const project = "ws_devcontainer" // the Dev Container CLI's name for ws/.devcontainer

var files = map[string]string{
	"Dockerfile": `ARG BASE
FROM ${BASE}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/*
RUN echo "host all all 0.0.0.0/0 trust" >> /etc/postgresql/15/main/pg_hba.conf && mkdir /data && chown redis:redis /data
`,
	".devcontainer/devcontainer.json": `{
	"dockerComposeFile": "docker-compose.yml",
	"service": "app",
	"workspaceFolder": "/workspaces/ws",
	"customizations": {"devbox": {"ssh": {"port": 2297}}}
}`,
	".devcontainer/docker-compose.yml": `services:
  app:
    build: {context: .., args: {BASE: "${BASE}"}}
    command: sleep infinity
    volumes: ["../..:/workspaces:cached"]
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_healthy}
  db:
    build: {context: .., args: {BASE: "${BASE}"}}
    user: postgres
    command: ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/15/main", "-c", "config_file=/etc/postgresql/15/main/postgresql.conf", "-c", "listen_addresses=*"]
    stop_signal: SIGINT
    volumes: ["pgdata:/var/lib/postgresql"]
    healthcheck: {test: "pg_isready -h 127.0.0.1", interval: 1s, retries: 30}
  cache:
    build: {context: .., args: {BASE: "${BASE}"}}
    user: redis
    command: redis-server --appendonly yes --dir /data --protected-mode no
    volumes: ["redisdata:/data"]
    healthcheck: {test: ["CMD", "redis-cli", "ping"], interval: 1s, retries: 30}
volumes:
  pgdata:
  redisdata:
`,
}

func main() {
	devbox := flag.String("devbox", "bin/devbox", "devbox binary (absolute; devbox-compose beside it)")
	rounds := flag.Int("rounds", 5, "interleaved rounds (medians are reported)")
	flag.Parse()
	if err := run(*devbox, *rounds); err != nil {
		log.Fatal(err)
	}
}

func run(devbox string, rounds int) error {
	ref, stop, err := testbase.ServeDebianBase(func(m string) { log.Print(m) })
	if err != nil {
		return err
	}
	defer stop()
	top, err := os.MkdirTemp("/var/tmp", "composebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(top)
	ws := filepath.Join(top, "ws")
	files[".devcontainer/.env"] = "BASE=" + ref + "\n"
	for rel, body := range files {
		p := filepath.Join(ws, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	dk, err := testenv.NewDockerBridged()
	if err != nil {
		return err
	}
	defer dk.Stop()
	d := &dockerSide{dk: dk, dir: filepath.Join(ws, ".devcontainer")}
	b := &devboxSide{bin: devbox, root: filepath.Join(os.TempDir(), "composebench-root"), dir: d.dir}
	defer os.RemoveAll(b.root)
	log.Print("building both sides' images and volumes (not timed)")
	if err := d.prepare(ref, ws); err != nil {
		return err
	}
	defer d.compose("down", "-v")
	if err := b.prepare(); err != nil {
		return err
	}
	defer b.do("rm", "--volumes", "ws")
	sides := []benchmark.Side{
		{Name: "docker-compose 1.29 + Docker 20.10", Measure: d.measure},
		{Name: "devbox", Measure: b.measure},
	}
	figures := []string{"up until healthy"}
	medians, err := benchmark.Interleave(sides, benchmark.Rounds{N: rounds, Logf: log.Printf}, figures)
	if err != nil {
		return err
	}
	fmt.Printf("medians of %d interleaved rounds, warm (images built, volumes made): app + PostgreSQL + Redis up until both databases are healthy and the app runs\n", rounds)
	benchmark.Report(os.Stdout, sides, figures, medians)
	return idleMemory(d, b)
}

// dockerSide is docker-compose on a daemon of its own.
type dockerSide struct {
	dk  *testenv.Docker
	dir string
}

func (d *dockerSide) compose(args ...string) ([]byte, error) {
	cmd := exec.Command("docker-compose", append([]string{"-p", project}, args...)...)
	cmd.Dir, cmd.Env = d.dir, append(d.dk.Env(), "COMPOSE_DOCKER_CLI_BUILD=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("docker-compose %v: %v\n%s", args, err, out)
	}
	return out, nil
}

// prepare builds the image as docker-compose names each service's (on
// the host's network: the daemon's bridge has no NAT), and makes the
// volumes with a first up.
func (d *dockerSide) prepare(ref, ws string) error {
	if _, err := d.dk.Run("pull", ref); err != nil {
		return err
	}
	if _, err := d.dk.Run("build", "--network=host", "-t", project+"_app", "--build-arg", "BASE="+ref, ws); err != nil {
		return err
	}
	for _, svc := range []string{"db", "cache"} {
		if _, err := d.dk.Run("tag", project+"_app", project+"_"+svc); err != nil {
			return err
		}
	}
	if _, err := d.measure(); err != nil {
		return err
	}
	return nil
}

// measure times up -d until both databases are healthy, then downs.
func (d *dockerSide) measure() ([]time.Duration, error) {
	start := time.Now()
	if _, err := d.compose("up", "-d"); err != nil {
		return nil, err
	}
	for _, svc := range []string{"db", "cache"} {
		for {
			out, err := d.dk.Run("inspect", "-f", "{{.State.Health.Status}}", project+"_"+svc+"_1")
			if err != nil {
				return nil, err
			}
			if strings.TrimSpace(string(out)) == "healthy" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	took := time.Since(start)
	if _, err := d.compose("stop"); err != nil {
		return nil, err
	}
	return []time.Duration{took}, nil
}

// devboxSide is devbox up of the devcontainer.json.
type devboxSide struct {
	bin, root, dir string
}

func (b *devboxSide) do(args ...string) (time.Duration, []byte, error) {
	return benchmark.Timed(b.dir, b.bin, append([]string{"--root", b.root}, args...)...)
}

// prepare builds and makes the volumes with a first up, and downs.
func (b *devboxSide) prepare() error {
	if _, err := b.measure(); err != nil {
		return err
	}
	return nil
}

// measure times up (which returns once the app's depends_on are healthy
// and its SSH server answers), then downs.
func (b *devboxSide) measure() ([]time.Duration, error) {
	took, _, err := b.do("up", "-f", "devcontainer.json")
	if err != nil {
		return nil, err
	}
	if _, _, err := b.do("down", "ws"); err != nil {
		return nil, err
	}
	return []time.Duration{took}, nil
}
