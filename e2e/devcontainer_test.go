package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/devbox/devbox/internal/testenv"
)

// labelledDebian publishes the test's Debian base, with a
// devcontainer.metadata label of value label, on the loopback registry
// as repo, as a prebuilt dev-container image is published.
func labelledDebian(t *testing.T, repo, label string) string {
	t.Helper()
	base := debianRegistry(t)
	img, cf := remoteImage(t, base)
	cfg := cf.Config
	cfg.Labels = map[string]string{"devcontainer.metadata": label}
	img, err := mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ref := strings.SplitN(base, "/", 2)[0] + "/" + repo + ":1"
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
	root := baseRoot(t)
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
	_, cf := remoteImage(t, ref)
	return cf.Config.Labels[label]
}

// remoteImage is the image ref in a registry, and its config.
func remoteImage(t *testing.T, ref string) (v1.Image, *v1.ConfigFile) {
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
	return img, cf
}
