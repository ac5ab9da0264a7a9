package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/devbox/devbox/internal/testenv"
)

// labelledDebian publishes the test's Debian base, with a
// devcontainer.metadata label of value label, on the loopback registry
// as repo, as a prebuilt dev-container image is published.
func labelledDebian(t *testing.T, repo, label string) string {
	t.Helper()
	src, err := name.ParseReference(debianRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.Labels = map[string]string{"devcontainer.metadata": label}
	if img, err = mutate.Config(img, cfg); err != nil {
		t.Fatal(err)
	}
	ref := src.Context().RegistryStr() + "/" + repo + ":1"
	dst, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

// devcontainerWS writes a workspace NAME whose devcontainer.json (at
// rel, under it) is body with devbox's port and network settings added.
func devcontainerWS(t *testing.T, name, rel, body string) (ws string, port int) {
	t.Helper()
	ws = filepath.Join(t.TempDir(), name)
	file := filepath.Join(ws, rel)
	os.MkdirAll(filepath.Dir(file), 0o755)
	port = freePort(t)
	body = strings.TrimSuffix(strings.TrimSpace(body), "}") +
		fmt.Sprintf(`, "customizations": {"devbox": {"ssh": {"port": %d}, "network": {"mode": "none"}}}}`, port)
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return ws, port
}

// TestDevcontainerImageMetadata: the devcontainer.metadata label of the
// image is merged under the devcontainer.json as the Dev Container CLI
// merges it: remoteUser from the image (the file names none), containerEnv
// per key with the file's last, remoteEnv over it, and postCreateCommands
// of every fragment in order, the image's first.
func TestDevcontainerImageMetadata(t *testing.T) {
	testenv.NeedRoot(t)
	root := t.TempDir()
	linkBase(t, root)
	ref := labelledDebian(t, "devcontainers/labelled", `[
		{"id": "ghcr.io/example/features/hello:1", "containerEnv": {"FROM_IMAGE": "image", "SHARED": "image"},
		 "postCreateCommand": "echo image-1 >> /tmp/order"},
		{"remoteUser": "imguser", "remoteEnv": {"REMOTE": "${containerEnv:FROM_IMAGE}-remote"},
		 "postCreateCommand": ["sh", "-c", "echo image-2-$(id -un) >> /tmp/order"]}
	]`)
	ws, _ := devcontainerWS(t, "labelled", ".devcontainer/devcontainer.json", fmt.Sprintf(`{
		"image": %q,
		"containerEnv": {"SHARED": "local"},
		"postCreateCommand": "echo local >> /tmp/order"
	}`, ref))
	if r := devbox(t, ws, "--root", root, "up"); r.code != 0 {
		t.Fatalf("up: %d %s", r.code, tail(r.stderr))
	}
	t.Cleanup(func() { devbox(t, ws, "--root", root, "rm", "labelled") })
	r := devbox(t, ws, "--root", root, "exec", "labelled", "--", "sh", "-c", `id -un; echo $FROM_IMAGE $SHARED $REMOTE; cat /tmp/order`)
	want := "imguser\nimage local image-remote\nimage-1\nimage-2-imguser\nlocal\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("exec: %d %q, want %q (%s)", r.code, r.stdout, want, r.stderr)
	}
	// What push publishes carries the label as the CLI writes it: the
	// image's fragments, then the file's, its variables as written.
	pushed := strings.Replace(ref, "devcontainers/labelled:1", "team/labelled:2", 1)
	if r := devbox(t, ws, "--root", root, "push", "labelled", pushed); r.code != 0 {
		t.Fatalf("push: %d %s", r.code, tail(r.stderr))
	}
	var entries []map[string]any
	if err := json.Unmarshal([]byte(imageLabel(t, pushed, "devcontainer.metadata")), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[1]["remoteUser"] != "imguser" || entries[2]["postCreateCommand"] != "echo local >> /tmp/order" {
		t.Errorf("pushed label: %v", entries)
	}
}

// imageLabel is a label of the image ref in a registry.
func imageLabel(t *testing.T, ref, label string) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.Config.Labels[label]
}

// TestDevcontainerImageMetadataRefused: what the label asks that devbox
// cannot honour (a capability, a host path) fails up with a message
// naming the label, instead of being dropped.
func TestDevcontainerImageMetadataRefused(t *testing.T) {
	testenv.NeedRoot(t)
	root := t.TempDir()
	linkBase(t, root)
	for _, c := range []struct{ repo, label, want string }{
		{"devcontainers/capadd", `[{"capAdd": ["SYS_PTRACE"]}]`, "capAdd [SYS_PTRACE]: not supported"},
		{"devcontainers/hostpath", `{"mounts": ["source=/etc,target=/host-etc,type=bind"]}`, "mounts /etc (bind) at /host-etc"},
	} {
		ref := labelledDebian(t, c.repo, c.label)
		ws, _ := devcontainerWS(t, "refused", ".devcontainer/devcontainer.json", fmt.Sprintf(`{"image": %q}`, ref))
		r := devbox(t, ws, "--root", root, "up")
		if r.code == 0 {
			devbox(t, ws, "--root", root, "rm", "refused")
		}
		if r.code == 0 || !strings.Contains(r.stderr, "devcontainer.metadata") || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: up: %d %s, want an error with %q", c.repo, r.code, tail(r.stderr), c.want)
		}
	}
}

// TestDevcontainerDockerfileLabel: the label written by the Dockerfile's
// own LABEL counts as the base image's does (the CLI reads it off the
// built image): its remoteUser is the login.
func TestDevcontainerDockerfileLabel(t *testing.T) {
	testenv.NeedRoot(t)
	root := t.TempDir()
	linkBase(t, root)
	ws, _ := devcontainerWS(t, "dflabel", ".devcontainer/devcontainer.json", fmt.Sprintf(`{
		"build": {"dockerfile": "Dockerfile", "args": {"BASE": %q}}
	}`, debianRegistry(t)))
	os.WriteFile(filepath.Join(ws, ".devcontainer", "Dockerfile"), []byte("ARG BASE\nFROM ${BASE}\n"+
		`LABEL devcontainer.metadata='[{"remoteUser": "labeluser", "containerEnv": {"FROM_LABEL": "yes"}}]'`+"\n"), 0o644)
	if r := devbox(t, ws, "--root", root, "up"); r.code != 0 {
		t.Fatalf("up: %d %s", r.code, tail(r.stderr))
	}
	t.Cleanup(func() { devbox(t, ws, "--root", root, "rm", "dflabel") })
	r := devbox(t, ws, "--root", root, "exec", "dflabel", "--", "sh", "-c", `id -un; echo $FROM_LABEL`)
	if want := "labeluser\nyes\n"; r.code != 0 || r.stdout != want {
		t.Errorf("exec: %d %q, want %q (%s)", r.code, r.stdout, want, r.stderr)
	}
}

// TestDevcontainerEnvNewline: a containerEnv value with newlines (as
// three of the CLI's own test configs have) reaches exec and SSH
// sessions, login shells included, whole.
func TestDevcontainerEnvNewline(t *testing.T) {
	testenv.NeedRoot(t)
	root := t.TempDir()
	linkBase(t, root)
	ws, _ := devcontainerWS(t, "envnl", ".devcontainer/devcontainer.json", fmt.Sprintf(`{
		"image": %q,
		"containerEnv": {"MULTI": "line one\nline 'two'\n\nend=3", "PLAIN": "p"},
		"postCreateCommand": "printf '%%s|' \"$MULTI\" > /tmp/created"
	}`, debianRegistry(t)))
	if r := devbox(t, ws, "--root", root, "up"); r.code != 0 {
		t.Fatalf("up: %d %s", r.code, tail(r.stderr))
	}
	t.Cleanup(func() { devbox(t, ws, "--root", root, "rm", "envnl") })
	want := "line one\nline 'two'\n\nend=3|p|"
	r := devbox(t, ws, "--root", root, "exec", "envnl", "--", "sh", "-c", `printf '%s|' "$MULTI" "$PLAIN"`)
	if r.code != 0 || r.stdout != want {
		t.Errorf("exec: %d %q, want %q (%s)", r.code, r.stdout, want, r.stderr)
	}
	r = devbox(t, ws, "--root", root, "exec", "envnl", "--", "bash", "-lc", `printf '%s|' "$MULTI" "$PLAIN"`)
	if r.code != 0 || r.stdout != want {
		t.Errorf("login shell: %d %q, want %q (%s)", r.code, r.stdout, want, r.stderr)
	}
	r = devbox(t, ws, "--root", root, "exec", "envnl", "--", "cat", "/tmp/created")
	if r.stdout != "line one\nline 'two'\n\nend=3|" {
		t.Errorf("postCreateCommand saw %q", r.stdout)
	}
}

// TestDevcontainerFeatureValue: a local feature named with a string or a
// boolean instead of options installs as the CLI installs it
// (getFeatureValueObject): the string is the version option's when the
// feature has one, and is otherwise dropped, the defaults kept.
func TestDevcontainerFeatureValue(t *testing.T) {
	testenv.NeedRoot(t)
	root := t.TempDir()
	linkBase(t, root)
	ws, _ := devcontainerWS(t, "featval", ".devcontainer/devcontainer.json", fmt.Sprintf(`{
		"image": %q,
		"features": {"./plain": "latest", "./versioned": "1.2", "./flag": true, "./empty": {}}
	}`, debianRegistry(t)))
	feature := func(dir, meta, install string) {
		d := filepath.Join(ws, ".devcontainer", dir)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "devcontainer-feature.json"), []byte(meta), 0o644)
		os.WriteFile(filepath.Join(d, "install.sh"), []byte("#!/bin/sh\nset -e\n"+install+"\n"), 0o755)
	}
	feature("plain", `{"id": "plain", "options": {"greeting": {"type": "string", "default": "hi"}}}`, `echo "plain $GREETING" > /opt/plain`)
	feature("versioned", `{"id": "versioned", "version": "0.1.0", "options": {"version": {"type": "string", "default": "1.0"}}}`, `echo "versioned $VERSION" > /opt/versioned`)
	feature("flag", `{"id": "flag"}`, `echo flag > /opt/flag`)
	feature("empty", `{"id": "empty"}`, `echo empty > /opt/empty`)
	if r := devbox(t, ws, "--root", root, "up"); r.code != 0 {
		t.Fatalf("up: %d %s", r.code, tail(r.stderr))
	}
	t.Cleanup(func() { devbox(t, ws, "--root", root, "rm", "featval") })
	r := devbox(t, ws, "--root", root, "exec", "featval", "--", "cat", "/opt/plain", "/opt/versioned", "/opt/flag", "/opt/empty")
	if want := "plain hi\nversioned 1.2\nflag\nempty\n"; r.code != 0 || r.stdout != want {
		t.Errorf("exec: %d %q, want %q (%s)", r.code, r.stdout, want, r.stderr)
	}
}

// TestDevcontainerSubfolder: a config in .devcontainer/python/ is the
// project's: the project root is the local workspace folder (its name in
// ${localWorkspaceFolderBasename}, the environment's name, the tree
// mounted), and the bind rule's project tree, so that a root owned by
// uid 1000 is the login's inside and what the login makes there is
// 1000's on the host.
func TestDevcontainerSubfolder(t *testing.T) {
	testenv.NeedRoot(t)
	root := t.TempDir()
	linkBase(t, root)
	ws, _ := devcontainerWS(t, "proj", ".devcontainer/python/devcontainer.json", fmt.Sprintf(`{
		"image": %q,
		"remoteUser": "dev",
		"workspaceMount": "source=${localWorkspaceFolder},target=/src/${localWorkspaceFolderBasename},type=bind",
		"workspaceFolder": "/src/${localWorkspaceFolderBasename}"
	}`, debianRegistry(t)))
	os.WriteFile(filepath.Join(ws, "README"), []byte("root of proj\n"), 0o644)
	for _, p := range []string{ws, filepath.Join(ws, "README")} {
		os.Chown(p, 1000, 1000)
	}
	if r := devbox(t, ws, "--root", root, "up", "-f", ".devcontainer/python/devcontainer.json"); r.code != 0 {
		t.Fatalf("up: %d %s", r.code, tail(r.stderr))
	}
	t.Cleanup(func() { devbox(t, ws, "--root", root, "rm", "proj") })
	r := devbox(t, ws, "--root", root, "exec", "proj", "--", "sh", "-c", `pwd; cat README; stat -c %U . README; touch made-inside`)
	if want := "/src/proj\nroot of proj\ndev\ndev\n"; r.code != 0 || r.stdout != want {
		t.Errorf("exec: %d %q, want %q (%s)", r.code, r.stdout, want, r.stderr)
	}
	if fi, err := os.Stat(filepath.Join(ws, "made-inside")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 1000 {
		t.Errorf("a file made inside, on the host: %v %+v", err, fi)
	}
}

// TestDevcontainerTitle: an environment made from a devcontainer.json is
// named after its workspace folder and found by its "name" too: ps shows
// both, exec, down and rm take either.
func TestDevcontainerTitle(t *testing.T) {
	testenv.NeedRoot(t)
	root := t.TempDir()
	linkBase(t, root)
	ws, _ := devcontainerWS(t, "titled", ".devcontainer/devcontainer.json", fmt.Sprintf(`{"name": "My Project", "image": %q}`, debianRegistry(t)))
	if r := devbox(t, ws, "--root", root, "up"); r.code != 0 {
		t.Fatalf("up: %d %s", r.code, tail(r.stderr))
	}
	t.Cleanup(func() { devbox(t, ws, "--root", root, "rm", "titled") })
	if r := devbox(t, "/", "--root", root, "ps"); !strings.Contains(r.stdout, `titled ("My Project")`) {
		t.Errorf("ps: %q", r.stdout)
	}
	if r := devbox(t, "/", "--root", root, "exec", "My Project", "--", "echo", "hi"); r.code != 0 || r.stdout != "hi\n" {
		t.Errorf("exec by title: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := devbox(t, "/", "--root", root, "down", "My Project"); r.code != 0 || !strings.Contains(r.stdout, "titled is stopped") {
		t.Errorf("down by title: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := devbox(t, "/", "--root", root, "rm", "My Project"); r.code != 0 {
		t.Errorf("rm by title: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "envs", "titled")); err == nil {
		t.Error("rm by title left the environment")
	}
}
