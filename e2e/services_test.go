package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/testbase"
	"github.com/devbox/devbox/internal/testenv"
)

// servicesSpec is an environment with two services from the cached Debian
// base, run by the static helper: web greets on 7000, counts its starts
// in a named volume, restarts on failure and has a healthcheck; late
// waits for web to be healthy.
const servicesSpec = `name = %[1]q
base = %[2]q

[ssh]
port = %[3]d

[[mounts]]
source = %[4]q
target = "/helper"
readonly = true

[services.web]
image = %[2]q
command = ["/bin/sh", "-c", "echo start >> /data/starts; exec /helper hello-server 7000"]
volumes = [%[4]q, "%[1]s-data:/data"]
restart = "on-failure"
aliases = ["www"]
stop_grace_period = "3s"
healthcheck = { test = ["CMD", "/helper", "dial", "127.0.0.1:7000"], interval = "1s", retries = 5 }

[services.late]
image = %[2]q
command = "/helper sleep 3600"
volumes = [%[4]q]
depends_on = { web = { condition = "service_healthy" }, once = { condition = "service_completed_successfully" } }

[services.once]
image = %[2]q
command = ["/bin/sh", "-c", "sleep 0.5; echo migrated"]
`

// TestServices: an environment's services come up in depends_on order,
// the environment reaches them by name and another environment does not,
// a crashed service restarts, a named volume outlives down, and down
// leaves no process, address, rule or cgroup behind.
func TestServices(t *testing.T) {
	testenv.NeedRoot(t)
	testbase.Debian(t)
	root := filepath.Join(testenv.CacheDir(), "store")
	noLeftovers := leftoverCheck(root)
	dir := t.TempDir()
	name := "svc-e2e"
	helper := helperBin + ":/helper:ro"
	spec := fmt.Sprintf(servicesSpec, name, testbase.DebianRef, freePort(t), helper)
	spec = strings.Replace(spec, fmt.Sprintf("source = %q", helper), fmt.Sprintf("source = %q", helperBin), 1)
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644)
	db := func(args ...string) result { return devbox(t, dir, append([]string{"--root", root}, args...)...) }
	db("rm", name)
	db("volume", "rm", name+"-data")
	t.Cleanup(func() { db("rm", name); db("volume", "rm", name+"-data") })

	r := db("up")
	if r.code != 0 {
		t.Fatalf("up: %d %s%s", r.code, r.stdout, tail(r.stderr))
	}
	if !regexp.MustCompile(`(?s)service web … started.*service web … healthy after`).MatchString(r.stderr + r.stdout) {
		t.Errorf("up does not tell the services' progress:\n%s", r.stderr)
	}
	if r := db("exec", name, "--", "/helper", "dial", "web:7000"); !strings.Contains(r.stdout, "hello container") {
		t.Errorf("the environment does not reach web by name: %q %s", r.stdout, r.stderr)
	}
	if r := db("exec", "--service", "late", name, "--", "/helper", "dial", "www:7000"); !strings.Contains(r.stdout, "hello container") {
		t.Errorf("late does not reach web by its alias: %q %s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "service once … completed after") {
		t.Errorf("late did not wait for once to complete:\n%s", r.stderr)
	}
	r = db("ps")
	if !regexp.MustCompile(name+`/web\s+running \(healthy\)`).MatchString(r.stdout) || !regexp.MustCompile(name+`/late\s+running`).MatchString(r.stdout) ||
		!regexp.MustCompile(name+`/once\s+exited`).MatchString(r.stdout) {
		t.Errorf("ps does not show web running and healthy, late running, once exited:\n%s", r.stdout)
	}
	if r := db("logs", "--service", "once", name); !strings.Contains(r.stdout, "migrated\ndevbox: the main process exited with code 0") {
		t.Errorf("once's log: %q", r.stdout)
	}
	if r := db("exec", "--service", "late", name, "--", "getent", "hosts", name); !strings.Contains(r.stdout, name) {
		t.Errorf("a service does not find the environment by its name: %q %s", r.stdout, r.stderr)
	}
	webIP := serviceIP(t, db, name, "web")
	checkOtherEnvCannotReach(t, root, webIP)

	// A crash of the main process restarts it (on-failure).
	db("exec", "--service", "web", name, "--", "/bin/sh", "-c",
		`for p in /proc/[0-9]*; do grep -q hello-server $p/cmdline 2>/dev/null && kill -9 ${p#/proc/}; done`)
	if !waitFor(10*time.Second, func() bool {
		return strings.Contains(db("exec", name, "--", "/helper", "dial", "web:7000").stdout, "hello container")
	}) {
		t.Errorf("web did not come back after its crash")
	}
	if r := db("logs", "--service", "web", name); !strings.Contains(r.stdout, "exited with code 137; restart 1") {
		t.Errorf("the log does not tell the restart: %s", r.stdout)
	}

	if r := db("down"); r.code != 0 {
		t.Fatalf("down: %s", r.stderr)
	}
	noLeftovers(t)
	if r := db("up"); r.code != 0 {
		t.Fatalf("up again: %s", tail(r.stderr))
	}
	// Three starts: the first, the restart, and after down/up.
	if r := db("exec", "--service", "web", name, "--", "cat", "/data/starts"); strings.Count(r.stdout, "start") != 3 {
		t.Errorf("the named volume did not keep the starts: %q %s", r.stdout, r.stderr)
	}
	db("down")
	noLeftovers(t)
	if r := db("rm", "--volumes", name); r.code != 0 || strings.Contains(db("volume", "ls").stdout, name+"-data") {
		t.Errorf("rm --volumes left the service's named volume: %s %s", r.stderr, db("volume", "ls").stdout)
	}
}

// serviceIP is a running service's address, from ps --json.
func serviceIP(t *testing.T, db func(...string) result, env, svc string) string {
	t.Helper()
	r := db("ps", "--json")
	var envs []struct {
		Name     string
		Services []struct{ Name, IP string }
	}
	json.Unmarshal([]byte(r.stdout), &envs)
	for _, e := range envs {
		for _, s := range e.Services {
			if e.Name == env && s.Name == svc && s.IP != "" {
				return s.IP
			}
		}
	}
	t.Fatalf("no address of %s/%s in ps --json:\n%s", env, svc, r.stdout)
	return ""
}

// checkOtherEnvCannotReach brings up an environment without services and
// dials ip from it: another environment's service must not answer.
func checkOtherEnvCannotReach(t *testing.T, root, ip string) {
	t.Helper()
	dir := t.TempDir()
	spec := fmt.Sprintf("name = \"svc-e2e-other\"\nbase = %q\n[ssh]\nport = %d\n[[mounts]]\nsource = %q\ntarget = \"/helper\"\nreadonly = true\n",
		testbase.DebianRef, freePort(t), helperBin)
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644)
	if r := devbox(t, dir, "--root", root, "up"); r.code != 0 {
		t.Fatalf("up other: %s", tail(r.stderr))
	}
	defer devbox(t, dir, "--root", root, "rm", "svc-e2e-other")
	r := devbox(t, dir, "--root", root, "exec", "svc-e2e-other", "--", "/helper", "dial", net.JoinHostPort(ip, "7000"))
	if strings.Contains(r.stdout, "hello") || !strings.Contains(r.stdout, "dial error") {
		t.Errorf("another environment reached the service at %s: %q", ip, r.stdout)
	}
}

// TestServicesBadInput: a wrong services table is a one-line error naming
// the file, line and key; a port taken by another program fails the up
// with nothing of it left running.
func TestServicesBadInput(t *testing.T) {
	testenv.NeedRoot(t)
	testbase.Debian(t)
	root := filepath.Join(testenv.CacheDir(), "store")
	dir := t.TempDir()
	write := func(s string) {
		os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(fmt.Sprintf("name = \"svc-bad\"\nbase = %q\n[ssh]\nport = %d\n", testbase.DebianRef, freePort(t))+s), 0o644)
	}
	for _, c := range []struct{ spec, want string }{
		{"[services.a]\nimage = \"x\"\ndepends_on = [\"b\"]\n[services.b]\nimage = \"x\"\ndepends_on = [\"a\"]\n", "services.a.depends_on: depends on itself: a -> b -> a"},
		{"[services.a]\nimage = \"x\"\ndepends_on = [\"nosuch\"]\n", `services.a.depends_on: no other service is called "nosuch"`},
		{"[services.a]\nimage = \"x\"\nprivileged = true\n", "services.a.privileged: unknown key"},
		{"[services.a]\nimage = \"x\"\nrestart = \"sometimes\"\n", "services.a.restart:"},
	} {
		write(c.spec)
		r := devbox(t, dir, "--root", root, "up")
		if r.code == 0 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("%q: want one line with %q, got %d %q", c.spec, c.want, r.code, r.stderr)
		}
	}

	noLeftovers := leftoverCheck(root)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	write(fmt.Sprintf("[services.first]\nimage = %q\ncommand = \"sleep 3600\"\n[services.second]\nimage = %q\ncommand = \"sleep 3600\"\nports = [\"%d:80\"]\ndepends_on = [\"first\"]\n",
		testbase.DebianRef, testbase.DebianRef, port))
	r := devbox(t, dir, "--root", root, "up")
	if r.code == 0 || !strings.Contains(r.stderr, "service second") || !strings.Contains(r.stderr, "address already in use") {
		t.Errorf("up with a taken port: want the service and the port named, got %d %s", r.code, r.stderr)
	}
	if r := devbox(t, dir, "--root", root, "ps"); !regexp.MustCompile(`svc-bad\s+stopped`).MatchString(r.stdout) || strings.Contains(r.stdout, "svc-bad/") {
		t.Errorf("ps after the failed up:\n%s", r.stdout)
	}
	noLeftovers(t)
	devbox(t, dir, "--root", root, "rm", "svc-bad")
}

// TestServicesKilledUp: an up killed while it waits for a service to be
// healthy leaves its services recorded: ps says the environment is
// starting, and the next up stops them and comes up whole; down then
// leaves nothing.
func TestServicesKilledUp(t *testing.T) {
	testenv.NeedRoot(t)
	testbase.Debian(t)
	root := filepath.Join(testenv.CacheDir(), "store")
	noLeftovers := leftoverCheck(root)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(fmt.Sprintf(`name = "svc-killed"
base = %[1]q
[ssh]
port = %[2]d
[services.slow]
image = %[1]q
command = ["/bin/sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 3607"]
healthcheck = { test = "test -f /tmp/ready", interval = "1s", retries = 10 }
[services.after]
image = %[1]q
command = "sleep 3607"
depends_on = { slow = { condition = "service_healthy" } }
`, testbase.DebianRef, freePort(t))), 0o644)
	db := func(args ...string) result { return devbox(t, dir, append([]string{"--root", root}, args...)...) }
	t.Cleanup(func() { db("rm", "svc-killed") })

	cmd := execCommand(devboxBin, "--root", root, "up")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { return strings.Contains(db("ps").stdout, "svc-killed/slow") }) {
		cmd.Process.Kill()
		t.Fatalf("slow never started: %s", db("ps").stdout)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if r := db("ps"); !regexp.MustCompile(`svc-killed\s+starting`).MatchString(r.stdout) || strings.Contains(r.stdout, "svc-killed/after") {
		t.Errorf("ps after the killed up:\n%s", r.stdout)
	}
	if r := db("up"); r.code != 0 {
		t.Fatalf("up after the killed one: %s", tail(r.stderr))
	}
	r := db("ps")
	if strings.Count(r.stdout, "svc-killed/slow") != 1 || !regexp.MustCompile(`svc-killed/after\s+running`).MatchString(r.stdout) {
		t.Errorf("ps after the second up:\n%s", r.stdout)
	}
	if n := strings.Count(hostProcesses(), "sleep 3607"); n != 2 {
		t.Errorf("%d service processes run, want 2 (one each): the killed up's were not stopped", n)
	}
	db("down")
	noLeftovers(t)
	if n := strings.Count(hostProcesses(), "sleep 3607"); n != 0 {
		t.Errorf("%d service processes left after down", n)
	}
}

// hostProcesses is every process's command line, one per line.
func hostProcesses() string {
	var b strings.Builder
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range dirs {
		data, _ := os.ReadFile(p)
		b.WriteString(strings.ReplaceAll(string(data), "\x00", " ") + "\n")
	}
	return b.String()
}

// TestServicesKube: devbox kube writes each service of an environment
// that ran as a Deployment of its registry image and a headless Service
// of its name, with a claim for its named volume.
func TestServicesKube(t *testing.T) {
	testenv.NeedRoot(t)
	root := filepath.Join(testenv.CacheDir(), "store")
	dir := t.TempDir()
	ref := debianRegistry(t)
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(fmt.Sprintf(`name = "svc-kube"
base = %q
[ssh]
port = %d
[services.db]
image = %q
command = "sleep 3600"
user = "nobody"
volumes = ["svc-kube-data:/data"]
healthcheck = { test = "true", interval = "2s" }
`, testbase.DebianRef, freePort(t), ref)), 0o644)
	db := func(args ...string) result { return devbox(t, dir, append([]string{"--root", root}, args...)...) }
	t.Cleanup(func() { db("rm", "--volumes", "svc-kube") })
	if r := db("up"); r.code != 0 {
		t.Fatalf("up: %s", tail(r.stderr))
	}
	r := db("kube", "svc-kube", "--image", "registry.example/svc-kube@sha256:"+strings.Repeat("0", 64))
	if r.code != 0 {
		t.Fatalf("kube: %s", r.stderr)
	}
	for _, want := range []string{"kind: PersistentVolumeClaim\nmetadata:\n  labels:", "name: svc-kube-data", "image: " + ref,
		"runAsUser: 65534", "clusterIP: None", "- sleep\n        - \"3600\""} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("kube does not write %q:\n%s", want, r.stdout)
		}
	}
	if n := strings.Count(r.stdout, "kind: Deployment"); n != 2 {
		t.Errorf("%d Deployments, want the environment's and db's", n)
	}
}
