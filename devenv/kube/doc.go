// Package kube writes the Kubernetes manifests that run an image made by
// devbox push in a cluster: a Secret with the SSH host key and authorized
// keys (mounted where the image's entrypoint reads them, devenv/portable),
// a Deployment of one replica and a Service for SSH and the spec's ports.
// They are built from the Kubernetes API types and printed as YAML, for
// kubectl apply; nothing here talks to a cluster.
package kube
