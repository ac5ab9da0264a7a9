// Package kube describes what the Kubernetes manifests of an environment
// pushed by devbox push are made of (Env: its image, SSH keys, ports and
// services) and has them written by devbox-kube, a helper binary installed
// beside devbox (cmd/devbox-kube, devenv/kube/manifest): a Secret with the
// SSH host key and authorized keys (mounted where the image's entrypoint
// reads them, devenv/portable), a Deployment of one replica and a Service
// for SSH and the spec's ports, and each service's. Nothing here talks to
// a cluster; the stream is for kubectl apply.
package kube
