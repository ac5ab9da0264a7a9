package portable

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devbox/devbox/sshd"
)

func testKey(t *testing.T) (gossh.Signer, []byte) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := gossh.NewSignerFromKey(priv)
	return s, pem.EncodeToMemory(block)
}

func authorizedKey(s gossh.Signer) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.PublicKey())))
}

// source writes the baked configuration cfg and the secret files into a
// temporary directory.
func source(t *testing.T, cfg sshd.Config, secret map[string]string, environ ...string) Source {
	t.Helper()
	dir := t.TempDir()
	data, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, "sshd.json"), data, 0o644)
	os.Mkdir(filepath.Join(dir, "secret"), 0o700)
	for k, v := range secret {
		os.WriteFile(filepath.Join(dir, "secret", k), []byte(v), 0o400)
	}
	return Source{ConfigPath: filepath.Join(dir, "sshd.json"), SecretDir: filepath.Join(dir, "secret"), Environ: environ}
}

func TestLoadMergesImageAndRuntime(t *testing.T) {
	baked, _ := testKey(t)
	mounted, _ := testKey(t)
	fromEnv, _ := testKey(t)
	host, hostPEM := testKey(t)
	src := source(t,
		sshd.Config{User: "dev", AuthorizedKeys: []string{authorizedKey(baked)}, Env: []string{"PATH=/usr/bin", "LANG=C"}},
		map[string]string{"authorized_keys": authorizedKey(mounted) + "\n", "host_key": string(hostPEM), "password_hash": "$6$salt$hash\n"},
		"LANG=C.UTF-8", "KUBERNETES_SERVICE_HOST=10.0.0.1", EnvAuthorizedKeys+"="+authorizedKey(fromEnv), EnvPasswordHash+"=$6$other$x", EnvPort+"=2022")
	st, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	// The mounted file replaces the image's keys; the variable adds.
	want := []string{authorizedKey(mounted), authorizedKey(fromEnv)}
	if !slices.Equal(st.Config.AuthorizedKeys, want) {
		t.Errorf("keys %q, want %q", st.Config.AuthorizedKeys, want)
	}
	// The mounted secret wins over the variable.
	if st.Config.PasswordHash != "$6$salt$hash" {
		t.Errorf("password hash %q", st.Config.PasswordHash)
	}
	if st.Port != 2022 || st.Generated || authorizedKey(st.HostKey) != authorizedKey(host) {
		t.Errorf("port %d, generated %v, key %s", st.Port, st.Generated, authorizedKey(st.HostKey))
	}
	// Sessions get the runtime's environment, never devbox's settings.
	if want := []string{"PATH=/usr/bin", "LANG=C.UTF-8", "KUBERNETES_SERVICE_HOST=10.0.0.1"}; !slices.Equal(st.Config.Env, want) {
		t.Errorf("env %q, want %q", st.Config.Env, want)
	}
}

func TestLoadGeneratesHostKey(t *testing.T) {
	k, _ := testKey(t)
	st, err := Load(source(t, sshd.Config{User: "root", AuthorizedKeys: []string{authorizedKey(k)}}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Generated || st.HostKey == nil || st.Port != SSHPort {
		t.Errorf("generated %v, port %d", st.Generated, st.Port)
	}
}

func TestLoadRefusesBadInput(t *testing.T) {
	k, _ := testKey(t)
	cfg := sshd.Config{User: "root", AuthorizedKeys: []string{authorizedKey(k)}}
	for name, c := range map[string]struct {
		src  Source
		want string
	}{
		"bad key variable":       {source(t, cfg, nil, EnvAuthorizedKeys+"=ssh-ed25519 notbase64"), EnvAuthorizedKeys},
		"bad line by a good one": {source(t, cfg, map[string]string{"authorized_keys": authorizedKey(k) + "\nssh-ed25519 AAAAmistyped\n"}), "authorized_keys line 2"},
		"nobody could log in":    {source(t, sshd.Config{User: "root"}, map[string]string{"password_hash": "\n"}), "nobody could log in"},
		"key with options":       {source(t, cfg, map[string]string{"authorized_keys": `command="x" ` + authorizedKey(k)}), "options"},
		"bad port":               {source(t, cfg, nil, EnvPort+"=http"), EnvPort},
		"bad host key":           {source(t, cfg, map[string]string{"host_key": "not a key"}), "host key"},
		"no config":              {Source{ConfigPath: "/nonexistent/sshd.json"}, "not an image made by devbox push"},
	} {
		if _, err := Load(c.src); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error about %q", name, err, c.want)
		}
	}
}

// TestSessionEnvKeepsOthers: only devbox's settings leave the sessions'
// environment, not a user's DEVBOX_ variable.
func TestSessionEnvKeepsOthers(t *testing.T) {
	got := sessionEnv([]string{"PATH=/bin"}, []string{EnvPasswordHash + "=x", "DEVBOX_THEME=dark", EnvAuthorizedKeys + "=k"})
	if want := []string{"PATH=/bin", "DEVBOX_THEME=dark"}; !slices.Equal(got, want) {
		t.Errorf("env %q, want %q", got, want)
	}
}

func TestLayerRefusesPassword(t *testing.T) {
	exe, _ := os.Executable()
	if _, err := Layer(exe, sshd.Config{PasswordHash: "$6$x$y"}); err == nil {
		t.Error("a password hash went into a layer")
	}
}
