package devenv

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devbox/devbox/devenv/builder"
	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/rootfs"
	"github.com/devbox/devbox/sshd"
)

// ensureKey loads the ed25519 key at path, making it (0600) if missing.
// Host keys are made once per environment and kept across down/up and
// rebuilds, so that clients never see the host key change.
func ensureKey(path string) (gossh.Signer, error) {
	if data, err := os.ReadFile(path); err == nil {
		return gossh.ParsePrivateKey(data)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "devbox")
	if err != nil {
		return nil, err
	}
	data := pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return nil, err
	}
	signer, err := gossh.ParsePrivateKey(data)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+".pub", gossh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		return nil, err
	}
	return signer, os.Rename(tmp, path)
}

func readKey(path string) (gossh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return gossh.ParsePrivateKey(data)
}

func writeKnownHosts(path string, key gossh.PublicKey, c spec.SSH) error {
	var lines []string
	for _, host := range []string{dialHost(c.Address), "localhost"} {
		lines = append(lines, knownHostsLine(host, c.Port, key))
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644)
}

func knownHostsLine(host string, port int, key gossh.PublicKey) string {
	h := host
	if port != 22 {
		h = fmt.Sprintf("[%s]:%d", host, port)
	}
	return h + " " + string(gossh.MarshalAuthorizedKey(key))
}

// dialHost is where to reach a server bound to address.
func dialHost(address string) string {
	if ip := net.ParseIP(address); ip == nil || ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return address
}

func dialAddr(address string, port int) string {
	return net.JoinHostPort(dialHost(address), strconv.Itoa(port))
}

// Dial connects to a running environment's SSH server over its exec
// socket, with devbox's own key, checking the environment's host key.
func (e *Envs) Dial(env *Env) (*gossh.Client, error) {
	client, err := e.dialSocket(env, e.socket(env), env.User)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", env.Name, err)
	}
	return client, nil
}

// dialSocket connects as user to the SSH server of env's container (its
// own or a service's, which share its host key) at socket.
func (e *Envs) dialSocket(env *Env, socket, user string) (*gossh.Client, error) {
	key, err := readKey(e.ClientKeyPath())
	if err != nil {
		return nil, err
	}
	hostKey, err := readKey(e.dir(env.Name).HostKey())
	if err != nil {
		return nil, err
	}
	return sshd.DialUnix(socket, user, key, hostKey.PublicKey())
}

// imageLogins are the logins the image sets up for user: the keys in its
// ~/.ssh/authorized_keys and its crypt hash in /etc/shadow (none when
// locked or empty), as the overlay of the layers shows them. A key line
// with options is left out, as a spec refuses it, and a hash the SSH
// server cannot check (bcrypt, say) too: each comes back as a note.
func imageLogins(lower []string, user string) (keys []string, hash, note string, err error) {
	home, password := builder.ImageAccount(lower, user)
	if home == "" {
		home = "/root"
	}
	rel := strings.TrimPrefix(path.Join(home, ".ssh/authorized_keys"), "/")
	var notes []string
	if data, _, err := rootfs.ReadFromLayers(lower, rel); err == nil {
		for i, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, err := spec.ParseAuthorizedKeys([]byte(line))
			if err != nil {
				notes = append(notes, fmt.Sprintf("the image's /%s line %d left out: %v", rel, i+1, err))
				continue
			}
			keys = append(keys, k...)
		}
	}
	if strings.HasPrefix(password, "$") {
		hash = password
	}
	if hash != "" && !sshd.HashSupported(hash) {
		scheme, _, _ := strings.Cut(strings.TrimPrefix(hash, "$"), "$")
		notes = append(notes, fmt.Sprintf("the image's password for %s is a $%s$ hash, which devbox cannot check: password login stays off (set [ssh] password, or make the image use yescrypt or SHA-512: chpasswd -c SHA512)", user, scheme))
		hash = ""
	}
	return keys, hash, strings.Join(notes, "; "), nil
}
