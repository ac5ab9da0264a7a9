package convert

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/internal/testbase"
)

// TestClassicDockerfile: the classic Dockerfile becomes the devbox.toml
// it means, and what has no place there is reported.
func TestClassicDockerfile(t *testing.T) {
	r, err := Dockerfile(testbase.WriteClassicDockerfile(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Parse(filepath.Join(t.TempDir(), "devbox.toml"), r.Spec)
	if err != nil {
		t.Fatalf("%v\n%s", err, r.Spec)
	}
	if s.Base != "centos:7" || s.Workdir != "/var/www" || s.Node.Version != "12.9.1" || s.NPM.Registry != "http://registry.example.com/" || s.SSH.Password != "root" {
		t.Errorf("spec:\n%s", r.Spec)
	}
	if want := []string{"gcc", "gcc-c++", "pcre-devel", "openssl-devel", "make", "perl", "zlib", "zlib-devel", "vim"}; !slices.Equal(s.Packages.Install, want) {
		t.Errorf("packages %q, want %q (openssh-server is devbox's own)", s.Packages.Install, want)
	}
	if len(s.PortMaps) != 1 || s.PortMaps[0].ContainerPort != 80 {
		t.Errorf("ports %+v (22 is devbox's SSH)", s.PortMaps)
	}
	notes := strings.Join(r.Unmapped, "\n")
	for _, want := range []string{"Dockerfile:27: echo \"root:root\" | chpasswd", "CMD /usr/sbin/sshd -D: not needed"} {
		if !strings.Contains(notes, want) {
			t.Errorf("unmapped %q lacks %q", notes, want)
		}
	}
}

// TestDockerfileRunSteps: what is not an install stays a [[run]] step,
// a compound command whole; COPY is reported.
func TestDockerfileRunSteps(t *testing.T) {
	p := filepath.Join(t.TempDir(), "Dockerfile")
	os.WriteFile(p, []byte("FROM debian:12\nARG V=3\nRUN apt-get update && apt-get install -y --no-install-recommends git curl && rm -rf /var/lib/apt/lists/* && pip install tool==$V\nRUN for f in a b; do touch /$f; done\nCOPY . /src\n"), 0o644)
	r, err := Dockerfile(p)
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Parse(filepath.Join(t.TempDir(), "devbox.toml"), r.Spec)
	if err != nil {
		t.Fatalf("%v\n%s", err, r.Spec)
	}
	if !slices.Equal(s.Packages.Install, []string{"git", "curl"}) || len(s.Run) != 2 || s.Run[0].Command != "pip install tool==3" || s.Run[1].Command != "for f in a b; do touch /$f; done" {
		t.Errorf("spec:\n%s", r.Spec)
	}
	if len(r.Unmapped) != 1 || !strings.Contains(r.Unmapped[0], ":5: COPY . /src: devbox mounts the project") {
		t.Errorf("unmapped %q", r.Unmapped)
	}
}

// TestDevcontainerConverts: paths become the workspace's, lifecycle
// commands are reported.
func TestDevcontainerConverts(t *testing.T) {
	ws := t.TempDir()
	os.MkdirAll(filepath.Join(ws, ".devcontainer"), 0o755)
	os.WriteFile(filepath.Join(ws, ".devcontainer", "Dockerfile"), []byte("FROM debian:12\n"), 0o644)
	dc := filepath.Join(ws, ".devcontainer", "devcontainer.json")
	os.WriteFile(dc, []byte(`{"build": {"dockerfile": "Dockerfile"}, "forwardPorts": [3000], "postCreateCommand": "npm ci"}`), 0o644)
	r, err := Devcontainer(dc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Parse(filepath.Join(ws, "devbox.toml"), r.Spec)
	if err != nil {
		t.Fatalf("%v\n%s", err, r.Spec)
	}
	if !strings.Contains(string(r.Spec), `base = "dockerfile:.devcontainer/Dockerfile"`) || s.Mounts[0].Source != ws || s.PortMaps[0].HostPort != 3000 {
		t.Errorf("spec:\n%s", r.Spec)
	}
	if len(r.Unmapped) != 1 || !strings.Contains(r.Unmapped[0], "postCreateCommand: npm ci") {
		t.Errorf("unmapped %q", r.Unmapped)
	}
}

// TestDockerfileRunMount: a RUN with --mount or --network is reported,
// not made a [[run]] command that would run without them.
func TestDockerfileRunMount(t *testing.T) {
	p := filepath.Join(t.TempDir(), "Dockerfile")
	os.WriteFile(p, []byte("FROM debian:12\nRUN --mount=type=secret,id=t cat /run/secrets/t\nRUN --network=none true\n"), 0o644)
	r, err := Dockerfile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Unmapped) != 2 || !strings.Contains(r.Unmapped[0], ":2: RUN --mount=type=secret,id=t cat /run/secrets/t: a [[run]] command has no --mount") {
		t.Errorf("unmapped %q", r.Unmapped)
	}
}
