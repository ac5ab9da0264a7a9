// Package manifest writes an environment's Kubernetes objects (a
// kube.Env) as a YAML stream for kubectl apply, built from the Kubernetes
// API types and checked against the API's naming rules. Only the helper
// binary devbox-kube links it: see devenv/kube for why.
package manifest
