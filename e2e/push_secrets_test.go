package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	gossh "golang.org/x/crypto/ssh"

	"github.com/devbox/devbox/rootfs"
)

// TestPushCarriesNoSecrets: a spec with a password, an npm registry
// whose token comes from the environment, authorized keys, and steps that
// leave what real builds leave (a host key that openssh-server's install
// makes, a generated user key, an npmrc with a literal token) is pushed
// to a registry that records every blob written to it. No blob (manifest,
// config, each layer as sent and unpacked) holds the password hash of
// the local build's /etc/shadow, either token, a private key block, the
// environment's host key or devbox's own client key. devbox kube's Secret
// carries the hash instead, and the image run with no hash refuses the
// password.
func TestPushCarriesNoSecrets(t *testing.T) {
	needTool(t, "podman", "podman")
	const envToken, bakedToken = "npm_ENVTOKEN0123456789", "npm_BAKEDTOKEN9876543210"
	t.Setenv("NPM_TOKEN", envToken)
	hostKey, userKey := pemKey(t), pemKey(t)
	run := fmt.Sprintf("mkdir -p /etc/ssh /root/.ssh && echo %s | base64 -d > /etc/ssh/ssh_host_ed25519_key && "+
		"echo %s | base64 -d > /root/.ssh/id_ed25519 && echo //npm.example/:_authToken=%s > /root/.npmrc",
		base64.StdEncoding.EncodeToString(hostKey), base64.StdEncoding.EncodeToString(userKey), bakedToken)
	e := upEnvWith(t, "pushsecrets", fmt.Sprintf("[npm]\nregistry = \"http://npm.example/\"\ntoken_env = \"NPM_TOKEN\"\n\n[[run]]\ncommand = %q\n", run), `user = "dev"`)

	hash := buildHash(t, e, "dev")
	secrets := map[string]string{"the password hash": hash, "the environment's npm token": envToken, "the baked npm token": bakedToken,
		"the build's host key": keyLine(t, hostKey), "the generated user key": keyLine(t, userKey)}
	for what, path := range map[string]string{"the environment's host key": filepath.Join(e.root, "envs", e.name, "host_key"),
		"devbox's client key": filepath.Join(e.root, "client_key")} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		secrets[what] = keyLine(t, data)
	}

	blobs, host := recordingRegistry(t)
	ref := host + "/team/secrets:1"
	r := devbox(t, e.dir, "--root", e.root, "push", e.name, ref)
	if r.code != 0 {
		t.Fatalf("push: %d %q %s", r.code, r.stdout, tail(r.stderr))
	}
	for _, note := range []string{"/etc/shadow: password hashes", "/root/.npmrc: password hashes and tokens left out",
		"/etc/ssh/ssh_host_ed25519_key: left out", "/root/.ssh/id_ed25519: left out"} {
		if !strings.Contains(r.stderr, note) {
			t.Errorf("push does not say %q: %s", note, r.stderr)
		}
	}
	written := blobs()
	if len(written) < 4 { // a manifest, a config, the base's layer and devbox's at least
		t.Fatalf("the registry saw %d writes", len(written))
	}
	for name, blob := range written {
		for what, s := range secrets {
			if bytes.Contains(blob, []byte(s)) {
				t.Errorf("%s holds %s (%.40s…)", name, what, s)
			}
		}
		for _, f := range privateKeyFiles(blob) {
			t.Errorf("%s holds a private key block in %s", name, f)
		}
	}
	kubeHasHash(t, e, hash)
	noPasswordWithoutHash(t, e, ref)
}

// privateKey is a PEM private key block, starting a line as in a key
// file. (Libraries embed their self-test keys, gnutls's among them, as
// strings, after a NUL: those are nobody's secrets.)
var privateKey = regexp.MustCompile(`(?m)^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END [A-Z0-9 ]*PRIVATE KEY-----`)

// privateKeyFiles are the files of a layer tar that hold a private key
// block; a blob that is not a tar (a manifest, a config, a layer as
// sent) is one file.
func privateKeyFiles(blob []byte) []string {
	var found []string
	tr := tar.NewReader(bytes.NewReader(blob))
	hdr, err := tr.Next()
	if err != nil {
		if privateKey.Match(blob) {
			found = append(found, "the blob")
		}
		return found
	}
	for ; err == nil; hdr, err = tr.Next() {
		data, rerr := io.ReadAll(tr)
		if rerr != nil {
			found = append(found, "/"+hdr.Name+" (unreadable: "+rerr.Error()+")")
		} else if privateKey.Match(data) {
			found = append(found, "/"+hdr.Name)
		}
	}
	if err != io.EOF {
		found = append(found, "an unreadable tar: "+err.Error())
	}
	return found
}

// pemKey is a new ed25519 key in OpenSSH's PEM form, as ssh-keygen
// writes it.
func pemKey(t *testing.T) []byte {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(k, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

// keyLine is the second line of a PEM key's body, as the file has it:
// the first is the same for every OpenSSH key of a kind, the second
// holds this key's own bytes, and a copy of the file holds it whole.
func keyLine(t *testing.T, data []byte) string {
	t.Helper()
	lines := strings.Split(string(data), "\n")
	if b, _ := pem.Decode(data); b == nil || len(lines) < 4 || len(lines[2]) < 40 {
		t.Fatalf("not a PEM key: %.40q", data)
	}
	return lines[2]
}

// buildHash is user's password field in the /etc/shadow of the local
// build (the layers image.json records), which must be a crypt hash.
func buildHash(t *testing.T, e *sshEnv, user string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.root, "envs", e.name, "image.json"))
	if err != nil {
		t.Fatal(err)
	}
	var img struct{ Lower []string }
	if err := json.Unmarshal(data, &img); err != nil {
		t.Fatal(err)
	}
	shadow, _, err := rootfs.ReadFromLayers(img.Lower, "etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(shadow), "\n") {
		if f := strings.Split(l, ":"); len(f) > 1 && f[0] == user && strings.HasPrefix(f[1], "$6$") {
			return f[1]
		}
	}
	t.Fatalf("no crypt hash for %s in the build's /etc/shadow:\n%s", user, shadow)
	return ""
}

// recordingRegistry serves go-containerregistry's registry on loopback
// and keeps the body of every write to it (blob uploads, manifests),
// unpacked too where it is gzip; blobs returns them by request path.
func recordingRegistry(t *testing.T) (blobs func() map[string][]byte, host string) {
	var mu sync.Mutex
	got := map[string][]byte{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut || r.Method == http.MethodPatch || r.Method == http.MethodPost {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			got[r.Method+" "+r.URL.Path+" #"+strconv.Itoa(len(got))] = body
			mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return func() map[string][]byte {
		mu.Lock()
		defer mu.Unlock()
		out := map[string][]byte{}
		for name, body := range got {
			out[name] = body
			if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
				if plain, err := io.ReadAll(zr); err == nil {
					out[name+" (unpacked)"] = plain
				} else {
					t.Errorf("%s: gzip: %v", name, err)
				}
			}
		}
		return out
	}, strings.TrimPrefix(srv.URL, "http://")
}

// kubeHasHash: devbox kube's Secret carries the build's password hash,
// which the image does not.
func kubeHasHash(t *testing.T, e *sshEnv, hash string) {
	t.Helper()
	r := devbox(t, e.dir, "--root", e.root, "kube", e.name)
	if r.code != 0 {
		t.Fatalf("kube: %s", r.stderr)
	}
	if !strings.Contains(r.stdout, "password_hash:") || !strings.Contains(r.stdout, hash) {
		t.Errorf("kube's Secret has no password_hash %s:\n%.600s", hash, r.stdout)
	}
}

// noPasswordWithoutHash: the pushed image run with keys only serves the
// spec's key and refuses the spec's password.
func noPasswordWithoutHash(t *testing.T, e *sshEnv, ref string) {
	t.Helper()
	t.Cleanup(func() { exec.Command("podman", "rmi", "-f", ref).Run() })
	pub, err := os.ReadFile(e.key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	port, _ := podmanRun(t, ref, "-e", "DEVBOX_AUTHORIZED_KEYS="+string(pub))
	all := append(e.sshOpts(), "-p", strconv.Itoa(port), "dev@127.0.0.1", "true")
	if r := runCmd(t, "", exec.Command("ssh", all...)); r.code != 0 {
		t.Errorf("the spec's key: %d %s", r.code, r.stderr)
	}
	r := runCmd(t, "", exec.Command("sshpass", "-p", e.password, "ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no", "-p", strconv.Itoa(port), "dev@127.0.0.1", "true"))
	if r.code == 0 {
		t.Error("the spec's password logged in to an image run with no password hash")
	}
}
