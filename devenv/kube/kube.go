package kube

import (
	"encoding/json"
	"fmt"

	"github.com/devbox/devbox/internal/helperbin"
)

// Env is what the manifests are made of.
type Env struct {
	// Name is the environment's: the objects' name and label.
	Name string
	// Namespace is the objects' namespace; empty leaves it to kubectl.
	Namespace string
	// Image is the pushed image, by digest.
	Image string
	// HostKey is the server's private key (OpenSSH PEM) and
	// AuthorizedKeys are authorized_keys lines, both for the Secret.
	HostKey        []byte
	AuthorizedKeys []string
	// PasswordHash is the login's crypt hash, for the Secret's
	// password_hash: the image has none (devenv/portable's Redact).
	// Empty: password login is off.
	PasswordHash string
	// Ports are the spec's container ports, published by the Service
	// next to SSH.
	Ports []int
	// Services are the environment's services, each a Deployment and a
	// Service of its own (services.go).
	Services []Service
}

// Helper is the name of the manifest writer devbox runs
// (cmd/devbox-kube): the Kubernetes API types cost every process that
// links them 1.4 ms of package initialisers and 280 KiB of heap, and
// devbox's binary is also every container's init.
const Helper = "devbox-kube"

// Manifests are e's objects as a YAML stream, written by the helper
// (devenv/kube/manifest): the Secret, the Deployment and the Service, then
// each service's claims, Deployment and Service.
func Manifests(e Env) ([]byte, error) {
	in, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("kube %s: %w", e.Name, err)
	}
	out, _, err := helperbin.Run(Helper, "manifests are written by", nil, in)
	return out, err
}

// SecretName is the name of e's Secret.
func SecretName(name string) string { return name + "-ssh" }
