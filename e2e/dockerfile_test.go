package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/devbox/devbox/internal/testbase"
	"github.com/devbox/devbox/internal/testenv"
)

// hostAddress is an address of this host that a build container reaches
// through its bridge (not loopback, which is its own).
func hostAddress(t *testing.T) string {
	t.Helper()
	a, err := testenv.HostAddress()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// nodeTarGzServer serves a node-vX-linux-x64.tar.gz as nodejs.org does, on
// an address build containers reach, with a node that answers --version
// and an npm that keeps `config set` in ~/.npmrc, as npm does.
func nodeTarGzServer(t *testing.T, version string) string {
	t.Helper()
	top := t.TempDir()
	d := filepath.Join(top, "node-v"+version+"-linux-x64")
	os.MkdirAll(filepath.Join(d, "bin"), 0o755)
	os.WriteFile(filepath.Join(d, "bin", "node"), []byte("#!/bin/sh\n[ \"$1\" = --version ] && exec echo v"+version+"\necho fake node "+version+"\n"), 0o755)
	os.WriteFile(filepath.Join(d, "bin", "npm"), []byte(`#!/bin/sh
rc="$HOME/.npmrc"
case "$1 $2" in
"config set") echo "$3=$4" >> "$rc" ;;
"config get") sed -n "s|^$3=||p" "$rc" | tail -n 1 ;;
*) echo "fake npm"; exit 1 ;;
esac
`), 0o755)
	archive := filepath.Join(top, "node.tar.gz")
	if out, err := execCommand("tar", "-C", top, "-czf", archive, filepath.Base(d)).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, archive)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return fmt.Sprintf("http://%s:%d/dist/v%s/node-v%s-linux-x64.tar.gz", hostAddress(t), ln.Addr().(*net.TCPAddr).Port, version, version)
}

// writeClassicDockerfileSpec writes a devbox.toml whose base is the
// classic Dockerfile, with a Debian base from the loopback registry and
// apt-get for yum (CentOS's mirrors cannot be reached here), and the key
// and password it bakes. Debian's chpasswd is set to make SHA-512 hashes,
// as CentOS 7's does (Debian's own default, yescrypt, is refused with a
// warning: see TestImageLogins).
func writeClassicDockerfileSpec(t *testing.T, dir string, port int, pub string) {
	t.Helper()
	testbase.WriteClassicDockerfile(t, dir)
	key, _ := os.ReadFile(pub)
	spec := fmt.Sprintf(`name = "classic"
base = "dockerfile:Dockerfile"

[dockerfile.args]
BASE = %q
INSTALL = "eval sed -i s/yescrypt/sha512/ /etc/pam.d/common-password && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends"
PACKAGES = "gcc g++ libpcre3-dev libssl-dev make perl zlib1g zlib1g-dev vim openssh-server curl ca-certificates"
NODE_URL = %q
NPM_REGISTRY = "http://npm.example.test/"
ROOT_PASSWORD = "classic-pw"
AUTHORIZED_KEY = %q

[ssh]
port = %d
image_logins = true
`, debianRegistry(t), nodeTarGzServer(t, "12.9.1"), strings.TrimSpace(string(key)), port)
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644)
}

// TestClassicDockerfile: the classic Dockerfile builds as devbox's base
// and `up` serves SSH as its sshd would have: with the root password and
// the authorized key it bakes, Node and the npm registry it installs, its
// WORKDIR as the login directory; its CMD's sshd is not needed.
func TestClassicDockerfile(t *testing.T) {
	testenv.NeedRoot(t)
	dir, root := t.TempDir(), t.TempDir()
	linkBase(t, root)
	e := &sshEnv{name: "classic", dir: dir, root: root, port: freePort(t), user: "root"}
	var pub string
	e.key, pub = writeKeyPair(t, t.TempDir())
	writeClassicDockerfileSpec(t, dir, e.port, pub)
	r := devbox(t, dir, "--root", root, "up")
	if r.code != 0 {
		t.Fatalf("up: %d %s", r.code, tail(r.stderr))
	}
	t.Cleanup(func() { devbox(t, dir, "--root", root, "rm", "classic") })
	out := r.stdout + r.stderr
	for _, want := range []string{"RUN ${INSTALL} ${PACKAGES}", "starts sshd", "exposes 22/tcp 80/tcp", "image_logins: root may also log in as the image sets up: 1 key(s) from its authorized_keys and its password"} {
		if !strings.Contains(out, want) {
			t.Errorf("up does not say %q:\n%s", want, tail(out))
		}
	}
	r = e.ssh(t, "root@127.0.0.1", "node --version; npm config get registry; pwd; gcc --version | head -n 1")
	if lines := strings.Split(r.stdout, "\n"); r.code != 0 || len(lines) < 4 || lines[0] != "v12.9.1" || lines[1] != "http://npm.example.test/" || lines[2] != "/var/www" || !strings.HasPrefix(lines[3], "gcc") {
		t.Errorf("ssh with the Dockerfile's key: %d %q %s", r.code, r.stdout, r.stderr)
	}
	pw := runCmd(t, "", exec.Command("sshpass", "-p", "classic-pw", "ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no", "-p", strconv.Itoa(e.port), "root@127.0.0.1", "echo in"))
	if pw.code != 0 || pw.stdout != "in\n" {
		t.Errorf("ssh with the Dockerfile's root password: %d %q %s", pw.code, pw.stdout, pw.stderr)
	}
	// Editing one RUN line rebuilds that step and the ones after it only.
	spec, _ := os.ReadFile(filepath.Join(dir, "devbox.toml"))
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(strings.Replace(string(spec), `ROOT_PASSWORD = "classic-pw"`, `ROOT_PASSWORD = "changed-pw"`, 1)), 0o644)
	r = devbox(t, dir, "--root", root, "build")
	if r.code != 0 || strings.Count(r.stderr, "… cached") != 2 || !strings.Contains(r.stderr, "RUN echo \"root:${ROOT_PASSWORD}\" | chpasswd …\n") {
		t.Errorf("rebuild after an edit: %d %s", r.code, tail(r.stderr))
	}
}

// TestDockerfileStages: a multi-stage Dockerfile as BuildKit builds it:
// build args and ENV expanded, stages built only when the target needs
// them, COPY --from a stage and from scratch, --chown by name, the
// context less .dockerignore, ADD unpacking a local archive, USER and
// WORKDIR for RUN and for `devbox run`; a file copied onto a directory
// goes into it, a directory onto a link to one follows it (merged /usr).
// And an image's link cannot take a COPY out of its tree: /app →
// /etc/devbox-e2e-escape lands in the image's /etc, not the host's, and
// a pattern through a link to / does not read the host's files.
func TestDockerfileStages(t *testing.T) {
	testenv.NeedRoot(t)
	dir, root := t.TempDir(), t.TempDir()
	linkBase(t, root)
	ctx := filepath.Join(dir, "ctx")
	os.MkdirAll(filepath.Join(ctx, "sub"), 0o755)
	os.WriteFile(filepath.Join(ctx, "a.txt"), []byte("hello\n"), 0o644)
	os.WriteFile(filepath.Join(ctx, "sub", "b.txt"), []byte("deep\n"), 0o644)
	os.WriteFile(filepath.Join(ctx, "secret.txt"), []byte("secret\n"), 0o600)
	os.WriteFile(filepath.Join(ctx, ".dockerignore"), []byte("secret.txt\n"), 0o644)
	if out, err := execCommand("tar", "-C", ctx, "-czf", filepath.Join(ctx, "arch.tgz"), "sub").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	const escape = "/etc/devbox-e2e-escape"
	os.RemoveAll(escape)
	const secret = "/etc/devbox-e2e-secret"
	os.WriteFile(secret, []byte("host secret\n"), 0o600)
	defer os.Remove(secret)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`ARG BASE=unset
FROM ${BASE} AS build
ARG GREETING=hi
ENV OUT=/out
WORKDIR $OUT
RUN echo "$GREETING from build" > msg && ln -s / /h
COPY a.txt sub ./

FROM ${BASE} AS never
RUN exit 1

FROM scratch AS files
COPY --from=build /out/msg /msg

FROM ${BASE}
RUN useradd -m dev && ln -s `+escape+` /app
COPY --from=build /out /opt/out/
COPY --chown=dev:dev . /home/dev/ctx/
COPY a.txt /app/a.txt
COPY --from=build /h/etc/devbox-e2e-secre[t] /leak
COPY a.txt /usr/local/bin
COPY sub/ /lib/
ADD arch.tgz /opt/arch/
USER dev
WORKDIR /home/dev/work
RUN echo "I am $(id -un) in $(pwd)" > /home/dev/who
COPY --from=files /msg /msg2
`), 0o644)
	spec := fmt.Sprintf("base = \"dockerfile:ctx/Dockerfile\"\n[dockerfile.args]\nBASE = %q\nGREETING = \"hello\"\n[network]\nmode = \"none\"\n", debianRegistry(t))
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644)
	r := devbox(t, dir, "--root", root, "run", "--", "sh", "-c",
		`cat /opt/out/msg /opt/out/a.txt /opt/out/b.txt /opt/arch/sub/b.txt /home/dev/who /msg2 /etc/devbox-e2e-escape/a.txt `+
			`/usr/local/bin/a.txt /usr/lib/b.txt; test -L /lib && echo /lib is a link; test -e /leak && echo LEAKED; `+
			`stat -c %U:%G /home/dev/ctx /home/dev/ctx/a.txt; ls /home/dev/ctx; id -un; pwd`)
	want := "hello from build\nhello\ndeep\ndeep\nI am dev in /home/dev/work\nhello from build\nhello\nhello\ndeep\n/lib is a link\ndev:dev\ndev:dev\n" +
		"Dockerfile\na.txt\narch.tgz\nsub\ndev\n/home/dev/work\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("run: %d\n%s\nwant\n%s\n%s", r.code, r.stdout, want, tail(r.stderr))
	}
	if strings.Contains(r.stderr, "RUN exit 1") {
		t.Error("a stage the target does not need was built")
	}
	if _, err := os.Stat(escape); err == nil {
		os.RemoveAll(escape)
		t.Fatal("COPY followed an image's link out of its tree onto the host")
	}
}

// TestDevcontainer: a workspace with a Dockerfile-based devcontainer.json
// and no devbox.toml comes up as that file says: the Dockerfile with its
// build args, containerEnv, remoteUser, the workspace mounted at
// /workspaces/NAME and the login directory, postCreateCommand once,
// postStartCommand at every up, postAttachCommand at an interactive
// login, and devbox's own settings from customizations.devbox.
func TestDevcontainer(t *testing.T) {
	testenv.NeedRoot(t)
	root := baseRoot(t)
	ws := filepath.Join(t.TempDir(), "ws")
	os.MkdirAll(filepath.Join(ws, ".devcontainer"), 0o755)
	os.Chown(ws, projectOwner, projectOwner)
	key, pub := writeKeyPair(t, t.TempDir())
	pubKey, _ := os.ReadFile(pub)
	port := freePort(t)
	os.WriteFile(filepath.Join(ws, ".devcontainer", "Dockerfile"), []byte("ARG BASE\nFROM ${BASE}\nARG GREETING\nRUN useradd -m dev && echo \"$GREETING\" > /greeting\n"), 0o644)
	os.WriteFile(filepath.Join(ws, ".devcontainer", "devcontainer.json"), []byte(fmt.Sprintf(`{
	// as the public templates write them, comments and trailing commas
	"name": "Test workspace",
	"build": { "dockerfile": "Dockerfile", "args": { "BASE": %q, "GREETING": "hello" }, },
	"containerEnv": { "TEAM": "devbox" },
	"remoteUser": "dev",
	"postCreateCommand": "echo created >> ${containerWorkspaceFolder}/created.log",
	"postStartCommand": ["sh", "-c", "echo started >> \"$HOME/started.log\""],
	"postAttachCommand": "echo attached-banner",
	"customizations": {
		"vscode": { "extensions": ["golang.go"] },
		"devbox": { "ssh": { "port": %d, "authorized_keys": [%q] }, "network": { "mode": "none" } },
	},
}`, debianRegistry(t), port, strings.TrimSpace(string(pubKey)))), 0o644)
	up := func() {
		t.Helper()
		if r := devbox(t, ws, "--root", root, "up"); r.code != 0 {
			t.Fatalf("up: %d %s", r.code, tail(r.stderr))
		}
	}
	up()
	t.Cleanup(func() { devbox(t, ws, "--root", root, "rm", "ws") })
	e := &sshEnv{name: "ws", dir: ws, root: root, port: port, key: key, user: "dev"}
	r := e.ssh(t, "dev@127.0.0.1", "cat /greeting ${PWD}/created.log; echo $TEAM; pwd; id -un")
	if want := "hello\ncreated\ndevbox\n/workspaces/ws\ndev\n"; r.code != 0 || r.stdout != want {
		t.Errorf("ssh: %d %q, want %q (%s)", r.code, r.stdout, want, r.stderr)
	}
	if fi, err := os.Stat(filepath.Join(ws, "created.log")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != projectOwner {
		t.Errorf("created.log on the host: %v %+v", err, fi)
	}
	if r := devbox(t, ws, "--root", root, "down"); r.code != 0 {
		t.Fatalf("down: %s", r.stderr)
	}
	up()
	r = e.ssh(t, "dev@127.0.0.1", "cat created.log ~/started.log")
	if want := "created\nstarted\nstarted\n"; r.stdout != want {
		t.Errorf("after down and up: %q, want %q", r.stdout, want)
	}
	r = runCmd(t, "exit\n", exec.Command("ssh", append(e.sshOpts(), "-tt", "-p", strconv.Itoa(port), "dev@127.0.0.1")...))
	if !strings.Contains(r.stdout, "attached-banner") {
		t.Errorf("postAttachCommand at login: %q %s", r.stdout, r.stderr)
	}
}

// pushFeature publishes a feature folder's files as an OCI artifact, as
// `devcontainer features publish` does, and returns its reference.
func pushFeature(t *testing.T, repo string, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		tw.WriteHeader(&tar.Header{Name: "./" + name, Mode: 0o755, Size: int64(len(files[name])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[name]))
	}
	tw.Close()
	layer := static.NewLayer(buf.Bytes(), types.MediaType("application/vnd.devcontainers.layer.v1+tar"))
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(mutate.ConfigMediaType(img, "application/vnd.devcontainers"), types.OCIManifestSchema1)
	ref, err := name.ParseReference(repo + ":1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return repo + ":1"
}

// TestDevcontainerFeatures: a feature from the loopback registry and a
// local one install as build steps, in installsAfter's order (not the
// file's), with their options as variables and _REMOTE_USER; their
// containerEnv reaches sessions; a second up builds nothing.
func TestDevcontainerFeatures(t *testing.T) {
	testenv.NeedRoot(t)
	root := baseRoot(t)
	repo := testenv.Registry(t) + "/features/hello"
	hello := pushFeature(t, repo, map[string]string{
		"devcontainer-feature.json": `{"id": "hello", "version": "1.0.0",
			"options": {"greeting": {"type": "string", "default": "hi"}, "loud": {"type": "boolean", "default": false}},
			"containerEnv": {"HELLO_HOME": "/opt/hello", "PATH": "/opt/hello/bin:${PATH}"}}`,
		"install.sh": "#!/bin/sh\nset -e\nmkdir -p /opt/hello/bin\nprintf '#!/bin/sh\\necho \"%s from %s (loud=%s)\"\\n' \"$GREETING\" \"$_REMOTE_USER\" \"$LOUD\" > /opt/hello/bin/hello\nchmod +x /opt/hello/bin/hello\n",
	})
	ws := filepath.Join(t.TempDir(), "feat")
	local := filepath.Join(ws, ".devcontainer", "local-feature")
	os.MkdirAll(local, 0o755)
	os.WriteFile(filepath.Join(local, "devcontainer-feature.json"), []byte(fmt.Sprintf(`{"id": "local", "version": "0.1.0", "installsAfter": [%q]}`, repo)), 0o644)
	os.WriteFile(filepath.Join(local, "install.sh"), []byte("#!/bin/sh\nset -e\ntest -x /opt/hello/bin/hello\necho after-hello > /opt/local-order\n"), 0o755)
	key, pub := writeKeyPair(t, t.TempDir())
	pubKey, _ := os.ReadFile(pub)
	port := freePort(t)
	os.WriteFile(filepath.Join(ws, ".devcontainer", "devcontainer.json"), []byte(fmt.Sprintf(`{
	"image": %q,
	"features": {
		"./local-feature": {},
		%q: {"greeting": "hello there", "loud": true},
	},
	"customizations": {"devbox": {"ssh": {"port": %d, "authorized_keys": [%q]}, "network": {"mode": "none"}}},
}`, debianRegistry(t), hello, port, strings.TrimSpace(string(pubKey)))), 0o644)
	r := devbox(t, ws, "--root", root, "up")
	if r.code != 0 {
		t.Fatalf("up: %d %s", r.code, tail(r.stderr))
	}
	t.Cleanup(func() { devbox(t, ws, "--root", root, "rm", "feat") })
	if i, j := strings.Index(r.stderr, "feature "+hello), strings.Index(r.stderr, "feature ./local-feature"); i < 0 || j < i {
		t.Errorf("features not in installsAfter's order:\n%s", tail(r.stderr))
	}
	e := &sshEnv{name: "feat", dir: ws, root: root, port: port, key: key, user: "root"}
	r = e.ssh(t, "root@127.0.0.1", "hello; cat /opt/local-order; echo $HELLO_HOME")
	if want := "hello there from root (loud=true)\nafter-hello\n/opt/hello\n"; r.code != 0 || r.stdout != want {
		t.Errorf("ssh: %d %q, want %q (%s)", r.code, r.stdout, want, r.stderr)
	}
	devbox(t, ws, "--root", root, "down")
	if r := devbox(t, ws, "--root", root, "build"); r.code != 0 || strings.Count(r.stderr, "… cached") < 2 || strings.Contains(r.stderr, "feature "+hello+" …\n") {
		t.Errorf("second build: %d %s", r.code, tail(r.stderr))
	}
}
