package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/testenv"

	"github.com/devbox/devbox/internal/testbase"
)

// debianRegistry serves the cached Debian base from a loopback registry,
// as a team would pull debian:bookworm, and returns its reference. One
// registry serves every test of the run: exporting the base compresses
// 100 MB, which the cgroup-v2 VM's emulated CPU takes 20 s to do.
func debianRegistry(t *testing.T) string {
	t.Helper()
	store, img := testbase.Debian(t)
	debianBase.once.Do(func() {
		debianBase.ref, _, _, debianBase.err = testbase.ServeDebian(store, img) // serves until the run ends
	})
	if debianBase.err != nil {
		t.Fatal(debianBase.err)
	}
	return debianBase.ref
}

var debianBase struct {
	once sync.Once
	ref  string
	err  error
}

const classicSpec = `name = "classic"
base = %q
workdir = "/var/www"
ports = ["%d:80"]

[packages]
install = ["gcc", "gcc-c++", "pcre-devel", "openssl-devel", "make", "perl", "zlib", "zlib-devel"]

[node]
version = "%s"
mirror = "npm"

[npm]
registry = %q

[ssh]
port = %d
authorized_keys = [%q]
password = "classic-pw"

[[mounts]]
source = "."
target = "/var/www"

[network]
mode = "none"
%s`

// TestClassicEnvironment is the everyday Dockerfile done by devbox: a
// CentOS-named toolchain on Debian, Node 12.9.1, the team's npm registry,
// the project at /var/www, SSH and port 80.
func TestClassicEnvironment(t *testing.T) {
	testenv.NeedRoot(t)
	base := debianRegistry(t)
	dir := t.TempDir()
	root := t.TempDir()
	_, pub := writeKeyPair(t, dir)
	key := filepath.Join(dir, "id_test")
	sshPort, webPort := freePort(t), freePort(t)
	team := teamRegistry(t)
	spec := func(node, run string) {
		os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(fmt.Sprintf(classicSpec, base, webPort, node, team, sshPort, pub, run)), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "server.js"), []byte(`require('http').createServer((q, s) => s.end('hello from node ' + process.version)).listen(80, '127.0.0.1', () => console.log('up'))`), 0o644)
	os.WriteFile(filepath.Join(dir, "check.c"), []byte("#include <openssl/ssl.h>\n#include <zlib.h>\n#include <pcre.h>\n#include <stdio.h>\nint main(void){ printf(\"%s %s %s\\n\", OpenSSL_version(0), zlibVersion(), pcre_version()); return 0; }\n"), 0o644)
	spec("12.9.1", "")

	r := devbox(t, dir, "--root", root, "build")
	if r.code != 0 {
		t.Fatalf("build: %d\n%s", r.code, tail(r.stderr))
	}
	for _, want := range []string{"gcc-c++ -> g++ (apt)", "openssl-devel -> libssl-dev (apt)", "pcre-devel -> libpcre3-dev (apt)", "node 12.9.1 with npm"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("build output lacks %q", want)
		}
	}
	if r := devbox(t, dir, "--root", root, "up"); r.code != 0 {
		t.Fatalf("up: %d %s", r.code, r.stderr)
	}
	defer devbox(t, dir, "--root", root, "rm", "classic")
	e := &sshEnv{name: "classic", dir: dir, root: root, port: sshPort, key: key, user: "root"}
	r = e.ssh(t, e.target(), "node --version; npm config get registry; pwd; cc -o /tmp/check check.c -lssl -lcrypto -lz -lpcre && /tmp/check")
	if r.code != 0 {
		t.Fatalf("in the environment: %d %s %s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 4 || lines[0] != "v12.9.1" || lines[1] != team || lines[2] != "/var/www" || !strings.Contains(lines[3], "OpenSSL") {
		t.Errorf("environment says:\n%s", r.stdout)
	}
	// A Node server on port 80 answers on the host's published port, on
	// 127.0.0.1 only.
	e.ssh(t, e.target(), "nohup node server.js > /tmp/node.log 2>&1 & sleep 0.5")
	var body string
	for i := 0; i < 50; i++ {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", webPort)); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body = string(b); strings.Contains(body, "v12.9.1") {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(body, "hello from node v12.9.1") {
		t.Errorf("published port 80: %q", body)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", hostIP(t), webPort), time.Second); err == nil {
		c.Close()
		t.Error("port 80 is published beyond 127.0.0.1")
	}
	devbox(t, dir, "--root", root, "down")

	// A second environment from the same build downloads nothing and
	// builds nothing.
	other := t.TempDir()
	data, _ := os.ReadFile(filepath.Join(dir, "devbox.toml"))
	os.WriteFile(filepath.Join(other, "devbox.toml"), []byte(strings.Replace(string(data), `name = "classic"`, `name = "classic2"`, 1)), 0o644)
	r = devbox(t, other, "--root", root, "build")
	if r.code != 0 || strings.Contains(r.stderr, "downloaded") || strings.Count(r.stderr, "… cached") != 5 {
		t.Errorf("second environment's build:\n%s", r.stderr)
	}

	// Only the Node step and those after it rebuild when Node changes;
	// the packages are still there.
	spec("12.10.0", "")
	r = devbox(t, dir, "--root", root, "build")
	if r.code != 0 {
		t.Fatalf("rebuild: %s", tail(r.stderr))
	}
	if !regexpMatch(`\[2/\d+\] packages .* … cached`, r.stderr) || regexpMatch(`\[3/\d+\] node .* … cached`, r.stderr) || regexpMatch(`\[5/\d+\] user .* … cached`, r.stderr) {
		t.Errorf("after a Node change:\n%s", r.stderr)
	}
	rr := devbox(t, dir, "--root", root, "run", "--", "sh", "-c", "node --version; command -v g++")
	if !strings.Contains(rr.stdout, "v12.10.0") || !strings.Contains(rr.stdout, "/usr/bin/g++") {
		t.Errorf("after the Node change: %q %s", rr.stdout, rr.stderr)
	}

	// A failing [[run]] step commits nothing and keeps the steps before it.
	spec("12.10.0", "[[run]]\ncommand = \"echo partial > /partial; exit 3\"\n")
	r = devbox(t, dir, "--root", root, "build")
	if r.code != 1 || !strings.Contains(r.stderr, "exited with 3") {
		t.Errorf("failing step: %d %s", r.code, tail(r.stderr))
	}
	if left, _ := os.ReadDir(filepath.Join(root, "tmp")); len(left) != 0 {
		t.Errorf("tmp/ after a failed step: %v", left)
	}
	spec("12.10.0", "[[run]]\ncommand = \"echo fixed > /fixed\"\n")
	r = devbox(t, dir, "--root", root, "build")
	if r.code != 0 || strings.Count(r.stderr, "… cached") != 5 {
		t.Errorf("fixed step: earlier steps not reused:\n%s", r.stderr)
	}
}

// teamRegistry is a team's npm registry on loopback: like Verdaccio, it
// proxies the public registry.
func teamRegistry(t *testing.T) string {
	t.Helper()
	upstream, _ := url.Parse("https://registry.npmjs.org")
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(upstream)
		r.Out.Host = upstream.Host
	}}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

func regexpMatch(expr, s string) bool {
	return mustCompile(expr).MatchString(s)
}

// nodeMirror is a nodejs.org-style mirror on loopback with a tiny fake
// distribution of version; its SHASUMS256.txt lies while *good is false.
type nodeMirror struct {
	*httptest.Server
	sum  string // the tarball's real sha256, hex
	good bool
}

func newNodeMirror(t *testing.T, version string) *nodeMirror {
	file := fmt.Sprintf("node-v%s-linux-x64.tar.xz", version)
	archive := fakeNodeDist(t, version)
	sum := sha256.Sum256(archive)
	m := &nodeMirror{sum: hex.EncodeToString(sum[:]), good: true}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/index.json":
			fmt.Fprintf(w, `[{"version":"v%s","lts":false}]`, version)
		case "/v" + version + "/SHASUMS256.txt":
			s := m.sum
			if !m.good {
				s = strings.Repeat("0", 64)
			}
			fmt.Fprintf(w, "%s  %s\n", s, file)
		case "/v" + version + "/" + file:
			w.Write(archive)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(m.Close)
	return m
}

// TestNodeMirrorChecksum: a download that does not match the mirror's
// SHASUMS256.txt is refused; a matching one installs.
func TestNodeMirrorChecksum(t *testing.T) {
	testenv.NeedRoot(t)
	testbase.Debian(t)
	version := "99.1.2"
	srv := newNodeMirror(t, version)
	dir := t.TempDir()
	root := t.TempDir()
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(fmt.Sprintf("base = %q\n[node]\nversion = %q\nmirror = %q\n[network]\nmode = \"none\"\n", testbase.DebianRef, version, srv.URL)), 0o644)
	// Share the cached base without touching the cache's builds.
	linkBase(t, root)
	srv.good = false
	r := devbox(t, dir, "--root", root, "build")
	if r.code == 0 || !strings.Contains(r.stderr, "checksum mismatch") {
		t.Errorf("bad checksum: exit %d %s", r.code, tail(r.stderr))
	}
	srv.good = true
	r = devbox(t, dir, "--root", root, "run", "--", "/usr/local/bin/node")
	if r.code != 0 || !strings.Contains(r.stdout, "fake node "+version) {
		t.Errorf("good checksum: %d %q %s", r.code, r.stdout, tail(r.stderr))
	}
}

// baseRoot is a fresh state root that has the cached Debian base.
func baseRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	linkBase(t, root)
	return root
}

// linkBase makes root's store see the cached Debian image.
func linkBase(t *testing.T, root string) {
	t.Helper()
	cache, img := testbase.Debian(t)
	if err := testbase.Seed(cache, img, root); err != nil {
		t.Fatal(err)
	}
}

// fakeNodeDist is a node-vX-linux-x64.tar.xz whose bin/node is a shell
// script that answers --version as node does.
func fakeNodeDist(t *testing.T, version string) []byte {
	t.Helper()
	top := t.TempDir()
	d := filepath.Join(top, fmt.Sprintf("node-v%s-linux-x64", version))
	os.MkdirAll(filepath.Join(d, "bin"), 0o755)
	os.WriteFile(filepath.Join(d, "bin", "node"), []byte("#!/bin/sh\n[ \"$1\" = --version ] && exec echo v"+version+"\necho fake node "+version+"\n"), 0o755)
	out := filepath.Join(top, "node.tar.xz")
	cmd := execCommand("tar", "-C", top, "-cJf", out, filepath.Base(d))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, b)
	}
	data, _ := os.ReadFile(out)
	return data
}

// TestBuildKilledMidStep: a build killed while a step runs leaves nothing
// that counts as built, and the rerun builds the step cleanly.
func TestBuildKilledMidStep(t *testing.T) {
	testenv.NeedRoot(t)
	testbase.Debian(t)
	dir, root := t.TempDir(), t.TempDir()
	linkBase(t, root)
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(fmt.Sprintf("base = %q\n[[run]]\ncommand = \"echo started; sleep 2; echo done > /finished\"\n[network]\nmode = \"none\"\n", testbase.DebianRef)), 0o644)
	cmd := execCommand(devboxBin, "--root", root, "build")
	cmd.Dir = dir
	out, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "started") {
		n, err := out.Read(buf)
		if err != nil {
			t.Fatalf("build ended before its step started: %s", seen.String())
		}
		seen.Write(buf[:n])
	}
	cmd.Process.Kill()
	cmd.Wait()
	builds, _ := filepath.Glob(filepath.Join(root, "builds", "*.json"))
	r := devbox(t, dir, "--root", root, "plan")
	if !strings.Contains(r.stdout, "not built  run echo started") {
		t.Errorf("a killed step counts as built:\n%s", r.stdout)
	}
	r = devbox(t, dir, "--root", root, "build")
	if r.code != 0 {
		t.Fatalf("rerun: %s", tail(r.stderr))
	}
	after, _ := filepath.Glob(filepath.Join(root, "builds", "*.json"))
	if len(after) != len(builds)+1 {
		t.Errorf("%d step records before the rerun, %d after; want one more", len(builds), len(after))
	}
	if r := devbox(t, dir, "--root", root, "run", "--", "cat", "/finished"); strings.TrimSpace(r.stdout) != "done" {
		t.Errorf("the rerun step's layer: %q %s", r.stdout, r.stderr)
	}
	if left, _ := os.ReadDir(filepath.Join(root, "tmp")); len(left) != 0 {
		t.Errorf("tmp/ after the rerun: %v", left)
	}
}

// TestLockfile: build writes devbox.lock (the base's digest, the exact
// Node with its tarball's sha256, every step's key and layer diffID) and
// keeps it byte for byte while nothing changes; --locked refuses an edited
// spec with the difference; a lock that pins another Node tarball fails
// the build even with the step cached; lock --update takes what the
// source gives now and says what changed.
func TestLockfile(t *testing.T) {
	testenv.NeedRoot(t)
	testbase.Debian(t)
	m := newNodeMirror(t, "99.1.2")
	dir, root := t.TempDir(), t.TempDir()
	linkBase(t, root)
	specPath, lockPath := filepath.Join(dir, "devbox.toml"), filepath.Join(dir, "devbox.lock")
	spec := fmt.Sprintf("base = %q\n[node]\nversion = \"99\"\nmirror = %q\n[network]\nmode = \"none\"\n", testbase.DebianRef, m.URL)
	os.WriteFile(specPath, []byte(spec), 0o644)
	build := func(args ...string) result {
		return devbox(t, dir, append([]string{"--root", root}, args...)...)
	}
	if r := build("build"); r.code != 0 {
		t.Fatalf("build: %s", tail(r.stderr))
	}
	first, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`version = "99.1.2"`, `digest = "sha256:` + m.sum + `"`, `ref = "` + testbase.DebianRef + `"`, `kind = "node"`, `diff_id = "sha256:`} {
		if !strings.Contains(string(first), want) {
			t.Errorf("devbox.lock lacks %s:\n%s", want, first)
		}
	}
	if r := build("build"); r.code != 0 || strings.Contains(r.stderr, "change(s)") {
		t.Errorf("second build: %d %s", r.code, tail(r.stderr))
	}
	if again, _ := os.ReadFile(lockPath); string(again) != string(first) {
		t.Errorf("the lock changed with nothing else:\n%s\n---\n%s", first, again)
	}

	os.WriteFile(specPath, []byte(spec+"[[run]]\ncommand = \"touch /x\"\n"), 0o644)
	r := build("build", "--locked")
	if r.code == 0 || !strings.Contains(r.stderr, "--locked") || !strings.Contains(r.stderr, "+ step 4 run touch /x") {
		t.Errorf("--locked with an edited spec: %d %s", r.code, tail(r.stderr))
	}
	if again, _ := os.ReadFile(lockPath); string(again) != string(first) {
		t.Error("--locked wrote the lock")
	}
	os.WriteFile(specPath, []byte(spec), 0o644)

	os.WriteFile(lockPath, []byte(strings.ReplaceAll(string(first), m.sum, strings.Repeat("0", 64))), 0o644)
	if r := build("build"); r.code == 0 || !strings.Contains(r.stderr, "devbox.lock pins sha256:000") {
		t.Errorf("a lock pinning another tarball: %d %s", r.code, tail(r.stderr))
	}
	r = build("lock", "--update")
	if r.code != 0 || !strings.Contains(r.stderr, "- node 99.1.2 sha256:000") || !strings.Contains(r.stderr, "+ node 99.1.2 sha256:"+m.sum) {
		t.Errorf("lock --update: %d %s", r.code, tail(r.stderr))
	}
	// The node layer was built again, so its diffID is new; the rest is
	// what it was.
	if again, _ := os.ReadFile(lockPath); !strings.Contains(string(again), `digest = "sha256:`+m.sum+`"`) {
		t.Errorf("after --update the lock is not what the source gives:\n%s", again)
	}
	if r := build("build", "--locked"); r.code != 0 {
		t.Errorf("--locked after --update: %s", tail(r.stderr))
	}

	// A debootstrap base is made on each machine: another machine's tree
	// digest fails --locked, and a plain build records this one's.
	current, _ := os.ReadFile(lockPath)
	digest := regexp.MustCompile(`(?m)^digest = "(sha256:[0-9a-f]{64})"`).FindSubmatch(current)
	if digest == nil {
		t.Fatalf("no base digest in:\n%s", current)
	}
	other := "sha256:" + strings.Repeat("1", 64)
	os.WriteFile(lockPath, []byte(strings.Replace(string(current), string(digest[1]), other, 1)), 0o644)
	if r := build("build", "--locked"); r.code == 0 || !strings.Contains(r.stderr, "- base "+testbase.DebianRef+" "+other) {
		t.Errorf("--locked with another machine's tree digest: %d %s", r.code, tail(r.stderr))
	}
	if r := build("build"); r.code != 0 || !strings.Contains(r.stderr, "+ base "+testbase.DebianRef+" "+string(digest[1])) {
		t.Errorf("build with another machine's tree digest: %d %s", r.code, tail(r.stderr))
	}
}

// TestBuildCache: a teammate's machine (a second state root) with the
// same spec and lock pulls every step from the team's cache repository
// instead of running it: no step runs, the layers are the same (the run
// step's timestamp is the first machine's) and so are their diffIDs, so
// `build --locked` passes.
func TestBuildCache(t *testing.T) {
	testenv.NeedRoot(t)
	base := debianRegistry(t)
	cache := testenv.Registry(t) + "/team/cache"
	m := newNodeMirror(t, "99.1.2")
	spec := fmt.Sprintf("base = %q\n[node]\nversion = \"99\"\nmirror = %q\n[cache]\nimage = %q\n[network]\nmode = \"none\"\n\n[[run]]\ncommand = \"date +%%s%%N > /stamp\"\n", base, m.URL, cache)
	mine, theirs := t.TempDir(), t.TempDir()
	myRoot, theirRoot := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(mine, "devbox.toml"), []byte(spec), 0o644)
	if r := devbox(t, mine, "--root", myRoot, "build"); r.code != 0 {
		t.Fatalf("build: %s", tail(r.stderr))
	}
	r := devbox(t, mine, "--root", myRoot, "cache", "push")
	if r.code != 0 || strings.Count(r.stdout, "… pushed") != 4 {
		t.Fatalf("cache push: %d %q %s", r.code, r.stdout, tail(r.stderr))
	}
	lockFile, _ := os.ReadFile(filepath.Join(mine, "devbox.lock"))
	os.WriteFile(filepath.Join(theirs, "devbox.toml"), []byte(spec), 0o644)
	os.WriteFile(filepath.Join(theirs, "devbox.lock"), lockFile, 0o644)
	r = devbox(t, theirs, "--root", theirRoot, "build", "--locked")
	if r.code != 0 || strings.Count(r.stderr, "… pulled") != 4 {
		t.Fatalf("teammate's build: %d %s", r.code, tail(r.stderr))
	}
	if strings.Contains(r.stderr, "node 99.1.2 from") {
		t.Error("the node step ran on the teammate's machine")
	}
	stamp := func(dir, root string) string {
		r := devbox(t, dir, "--root", root, "run", "--", "cat", "/stamp")
		if r.code != 0 {
			t.Fatalf("run: %s", tail(r.stderr))
		}
		return r.stdout
	}
	if a, b := stamp(mine, myRoot), stamp(theirs, theirRoot); a != b {
		t.Errorf("the run step ran again: %q here, %q there", a, b)
	}
	if again, _ := os.ReadFile(filepath.Join(theirs, "devbox.lock")); string(again) != string(lockFile) {
		t.Errorf("the teammate's lock differs:\n%s", again)
	}
	// An image base whose digest is not the lock's is refused.
	moved := strings.Replace(string(lockFile), `ref = "`+base+`"`+"\ndigest = \"sha256:", `ref = "`+base+`"`+"\ndigest = \"sha256:0", 1)
	os.WriteFile(filepath.Join(theirs, "devbox.lock"), []byte(moved), 0o644)
	if r := devbox(t, theirs, "--root", theirRoot, "build"); r.code == 0 || !strings.Contains(r.stderr, "the base changed") {
		t.Errorf("a moved image base: %d %s", r.code, tail(r.stderr))
	}
	// Pushing again finds everything there.
	if r := devbox(t, mine, "--root", myRoot, "cache", "push"); strings.Count(r.stdout, "… present") != 4 {
		t.Errorf("second push: %q", r.stdout)
	}
}
