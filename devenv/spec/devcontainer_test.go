package spec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/devbox/devbox/rootfs"
	container "github.com/devbox/devbox/runtime"
)

// workspace writes a devcontainer.json (and any other files) into a new
// workspace and returns the devcontainer.json's path.
func workspace(t *testing.T, json string, files map[string]string) string {
	t.Helper()
	ws := filepath.Join(t.TempDir(), "My Project")
	os.MkdirAll(filepath.Join(ws, ".devcontainer"), 0o755)
	p := filepath.Join(ws, ".devcontainer", "devcontainer.json")
	os.WriteFile(p, []byte(json), 0o644)
	for name, content := range files {
		os.WriteFile(filepath.Join(ws, name), []byte(content), 0o644)
	}
	return p
}

// TestDevcontainerImage: the shape of the public Node.js template, with
// comments and trailing commas, read as the spec it means.
func TestDevcontainerImage(t *testing.T) {
	t.Setenv("DC_TEST_TOKEN", "s3cret")
	p := workspace(t, `// For format details, see https://aka.ms/devcontainer.json.
{
	"name": "Node.js",
	"image": "mcr.microsoft.com/devcontainers/javascript-node:1-20-bookworm",
	"forwardPorts": [3000, 9229,],
	"appPort": "127.0.0.1:8080:80",
	"containerEnv": { "TOKEN": "${localEnv:DC_TEST_TOKEN}", "TZ": "UTC" },
	"remoteEnv": { "PATH_EXTRA": "${containerEnv:TZ}-${containerWorkspaceFolder}", "TZ": null, "PATH": "${containerEnv:PATH}:/opt/x" },
	"postCreateCommand": "npm install",
	"postStartCommand": ["node", "--version"],
	"postAttachCommand": { "a": "echo a", "b": ["echo", "b"] },
	"customizations": {
		"vscode": { "extensions": ["dbaeumer.vscode-eslint"], "settings": { "go.gopath": "${workspaceFolder}/go" } },
		"devbox": { "ssh": { "port": 2299 }, "packages": { "install": ["git"] } }
	},
	"remoteUser": "node", /* the image's user */
}`, nil)
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	ws := filepath.Dir(filepath.Dir(p))
	if s.Name != "my-project" || s.Base != "mcr.microsoft.com/devcontainers/javascript-node:1-20-bookworm" || s.SSH.User != "node" || s.SSH.Port != 2299 || s.Dir != ws {
		t.Errorf("spec %q %q %q %d %q", s.Name, s.Base, s.SSH.User, s.SSH.Port, s.Dir)
	}
	if len(s.PortMaps) != 3 || s.PortMaps[0].HostIP != "127.0.0.1" || s.PortMaps[0].HostPort != 3000 || s.PortMaps[2].ContainerPort != 80 {
		t.Errorf("ports %+v", s.PortMaps)
	}
	if s.Env["TOKEN"] != "s3cret" || s.Env["PATH_EXTRA"] != "UTC-/workspaces/My Project" || s.Env["TZ"] != "" {
		t.Errorf("env %q", s.Env)
	}
	if env := s.Environ(rootfs.Config{Env: []string{"PATH=/usr/local/bin:/usr/bin"}}); !slices.Contains(env, "PATH=/usr/local/bin:/usr/bin:/opt/x") {
		t.Errorf("${containerEnv:PATH} with the image's: %q", env)
	}
	if len(s.Mounts) != 1 || s.Mounts[0].Source != ws || s.Mounts[0].Target != "/workspaces/My Project" || s.Workdir != "/workspaces/My Project" {
		t.Errorf("workspace %+v, workdir %q", s.Mounts, s.Workdir)
	}
	if !slices.Equal(s.Packages.Install, []string{"git"}) {
		t.Errorf("customizations.devbox packages %q", s.Packages.Install)
	}
	l := s.Lifecycle
	if len(l.PostCreate) != 1 || l.PostCreate[0].Shell != "npm install" || !slices.Equal(l.PostStart[0].Argv(), []string{"node", "--version"}) ||
		len(l.PostAttach) != 2 || l.PostAttach[1].Name != "b" || !slices.Equal(l.PostAttach[1].Args, []string{"echo", "b"}) {
		t.Errorf("lifecycle %+v", l)
	}
}

// TestDevcontainerDockerfile: build.dockerfile with its context and args,
// the other mount forms, and the workspace where the spec says.
func TestDevcontainerDockerfile(t *testing.T) {
	p := workspace(t, `{
	"build": { "dockerfile": "Dockerfile", "context": "..", "args": { "VARIANT": "12" }, "target": "dev" },
	"workspaceMount": "source=${localWorkspaceFolder},target=/src,type=bind",
	"workspaceFolder": "/src",
	"mounts": [
		"source=/var/cache,target=/ro-cache,type=bind,readonly",
		{ "source": "/tmp", "target": "/host-tmp", "type": "bind" },
		"source=proj-${devcontainerId},target=/cache,type=volume",
		{ "target": "/scratch", "type": "tmpfs" }
	],
	"containerUser": "dev"
}`, map[string]string{".devcontainer/Dockerfile": "FROM debian\n"})
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	ws := filepath.Dir(filepath.Dir(p))
	if s.BaseRef.Name != filepath.Join(ws, ".devcontainer", "Dockerfile") || s.Dockerfile.Context != ws || s.Dockerfile.Args["VARIANT"] != "12" || s.Dockerfile.Target != "dev" {
		t.Errorf("dockerfile %+v %+v", s.BaseRef, s.Dockerfile)
	}
	if len(s.Mounts) != 5 || s.Mounts[0].Target != "/src" || s.Mounts[0].Source != ws || !s.Mounts[1].Readonly || s.Mounts[2].Target != "/host-tmp" ||
		s.Mounts[3].Type != "volume" || !strings.HasPrefix(s.Mounts[3].Source, "proj-") || len(s.Mounts[3].Source) < 20 ||
		s.Mounts[4] != (container.Mount{Target: "/scratch", Type: "tmpfs"}) {
		t.Errorf("mounts %+v", s.Mounts)
	}
	if s.Workdir != "/src" || s.SSH.User != "dev" {
		t.Errorf("workdir %q user %q", s.Workdir, s.SSH.User)
	}
}

// TestDevcontainerFound: a workspace with no devbox.toml uses its
// devcontainer.json.
func TestDevcontainerFound(t *testing.T) {
	p := workspace(t, `{"image": "debian:12"}`, nil)
	s, err := Load(filepath.Join(filepath.Dir(filepath.Dir(p)), FileName))
	if err != nil || s.File != p {
		t.Fatalf("%v %+v", err, s)
	}
}

// TestDevcontainerErrors: errors name devcontainer.json's line and key.
func TestDevcontainerErrors(t *testing.T) {
	for _, c := range []struct{ json, want string }{
		{"{\n  \"image\": \"debian\",\n  \"imagee\": 1\n}", "devcontainer.json:3: imagee: unknown key"},
		{"{\n  \"image\": \"debian\",\n\n  \"runArgs\": [\"--privileged\"]\n}", "devcontainer.json:4: runArgs: not supported"},
		{"{\n  \"image\": \"debian\",\n  \"forwardPorts\": [\"db:5432\"]\n}", "devcontainer.json:3: forwardPorts.0: \"db:5432\": only a port number"},
		{"{\n  \"image\": \"debian\",\n  \"customizations\": {\"devbox\": {\n    \"ssh\": {\"port\": 99999}}}\n}", "devcontainer.json:4: customizations.devbox.ssh.port: 99999 is not a port"},
		{"{\n  \"image\": \"debian\",\n  \"mounts\": [\"source=x,target=/y,type=npipe\"]\n}", "devcontainer.json:3: mounts.0: type=npipe is not supported"},
		{"{\n  \"image\": \"debian\",\n  \"mounts\": [\"source=../x,target=/y,type=volume\"]\n}", "devcontainer.json:3: mounts.0.source: \"../x\" is not a volume name"},
		{"{\n  \"IMAGE\": \"debian\"\n}", "devcontainer.json:2: IMAGE: unknown key"},
		{"{\n  \"image\": \"debian\",\n  \"build\": {\"Dockerfile\": \"x\"}\n}", "devcontainer.json:3: build.Dockerfile: unknown key"},
		{"{\n  \"image\": \"debian\" \"x\"\n}", "devcontainer.json:2:"},
		{"{\n  \"name\": \"no base\"\n}", "no image or build.dockerfile"},
		{"{\n  \"image\": \"debian\",\n  \"remoteUser\": 7\n}", "devcontainer.json:3: remoteUser: want string"},
	} {
		_, err := Load(workspace(t, c.json, nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %q", c.json, err, c.want)
		}
	}
}
