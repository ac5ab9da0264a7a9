package devenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devbox/devbox/devenv/builder"
	"github.com/devbox/devbox/devenv/kube"
	"github.com/devbox/devbox/devenv/portable"
	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/rootfs"
	"github.com/devbox/devbox/sshd"
)

// Pushed is where Push last published an environment.
type Pushed struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
	// Redacted names what the image does not carry of the build, one
	// line each (see devenv/portable's Redact); not recorded.
	Redacted []string `json:"-"`
}

// Image is the pushed image by digest.
func (p Pushed) Image() string { return p.Ref + "@" + p.Digest }

// Push publishes an environment's build as an OCI image at ref that runs
// anywhere: the build's layers (not the writable layer: the image is what
// the spec builds) and devbox's own layer, whose SSH server is the
// entrypoint (devenv/portable). The build's layers go through
// portable.Redact: password hashes, registry tokens and private keys stay
// on this host, and the runtime gives the logins.
func (e *Envs) Push(ctx context.Context, name, ref string, insecure bool) (Pushed, error) {
	bi, err := e.builtImage(name)
	if err != nil {
		return Pushed{}, err
	}
	exe, err := os.Executable()
	if err != nil {
		return Pushed{}, fmt.Errorf("push %s: %w", name, err)
	}
	layer, err := portable.Layer(exe, *bi.SSH)
	if err != nil {
		return Pushed{}, fmt.Errorf("push %s: %w", name, err)
	}
	cfg := portable.ImageConfig(bi.Config, bi.Ports)
	cfg.Labels["dev.devbox.env"] = name
	bottomFirst := slices.Clone(bi.Lower)
	slices.Reverse(bottomFirst)
	var r redactions
	d, err := rootfs.Push(ctx, bottomFirst, cfg, ref, insecure, r.filter, layer)
	if err != nil {
		return Pushed{}, err
	}
	p := Pushed{Ref: ref, Digest: d.String(), Redacted: r.lines()}
	return p, writeJSON(e.dir(name).Pushed(), p)
}

// redactions runs portable.Redact and notes what it changed. The
// registry client reads layers concurrently, and may read one twice.
type redactions struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (r *redactions) filter(rel string, data []byte) ([]byte, bool) {
	out, drop := portable.Redact(rel, data)
	note := ""
	switch {
	case drop:
		note = "/" + rel + ": left out (a private key)"
	case !bytes.Equal(out, data):
		note = "/" + rel + ": password hashes and tokens left out"
	default:
		return out, drop
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	r.seen[note] = true
	return out, drop
}

func (r *redactions) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.seen))
}

// LastPushed is where Push last published name.
func (e *Envs) LastPushed(name string) (Pushed, error) {
	var p Pushed
	data, err := os.ReadFile(e.dir(name).Pushed())
	if err != nil {
		return p, fmt.Errorf("%s: not pushed from here yet (devbox push %s REF): %w", name, name, err)
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("%s: %w", e.dir(name).Pushed(), err)
	}
	return p, nil
}

// builtImage reads what name's last build was.
func (e *Envs) builtImage(name string) (*builtImage, error) {
	if err := spec.CheckName(name); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(e.dir(name).Image())
	if err != nil {
		return nil, fmt.Errorf("%s: not built here yet (devbox up): %w", name, err)
	}
	var bi builtImage
	if err := json.Unmarshal(data, &bi); err != nil {
		return nil, fmt.Errorf("%s: %w", e.dir(name).Image(), err)
	}
	if bi.SSH == nil {
		return nil, fmt.Errorf("%s: recorded by an older devbox: devbox down %s && devbox up, then push again", name, name)
	}
	return &bi, nil
}

// passwordHash is the login's crypt hash in the build's /etc/shadow,
// which push left out of the image: empty when the build sets none.
// (A hash the SSH server cannot check is left out, as up leaves it.)
func (bi *builtImage) passwordHash() string {
	if !bi.Password {
		return ""
	}
	_, hash := builder.ImageAccount(bi.Lower, bi.SSH.User)
	if !strings.HasPrefix(hash, "$") || !sshd.HashSupported(hash) {
		return ""
	}
	return hash
}

// Kube is the Kubernetes manifests (devenv/kube) that run name's pushed
// image: image, or else the image Push last published. The host key in
// their Secret is made once per environment and kept, so that applying
// them again does not change it; its fingerprint comes back for the
// user to check on first login.
func (e *Envs) Kube(name, image, namespace string) (manifests []byte, fingerprint string, err error) {
	bi, err := e.builtImage(name)
	if err != nil {
		return nil, "", err
	}
	if image == "" {
		p, err := e.LastPushed(name)
		if err != nil {
			return nil, "", err
		}
		image = p.Image()
	}
	path := e.dir(name).KubeHostKey()
	signer, err := ensureKey(path)
	if err != nil {
		return nil, "", fmt.Errorf("kube %s: host key: %w", name, err)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	m, err := kube.Manifests(kube.Env{Name: name, Namespace: namespace, Image: image,
		HostKey: pem, AuthorizedKeys: bi.SSH.AuthorizedKeys, PasswordHash: bi.passwordHash(), Ports: bi.Ports,
		Services: bi.Services})
	return m, gossh.FingerprintSHA256(signer.PublicKey()), err
}
