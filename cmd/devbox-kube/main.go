// Command devbox-kube writes the Kubernetes manifests of an environment:
// devbox kube gives it the environment (a kube.Env as JSON) on standard
// input, and it prints the objects as a YAML stream (devenv/kube/manifest).
//
// It is a binary of its own, installed beside devbox, because the
// Kubernetes API types cost every process that links them 1.4 ms of
// package initialisers and 280 KiB of heap, and devbox's binary is also
// every container's init.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/devbox/devbox/devenv/kube"
	"github.com/devbox/devbox/devenv/kube/manifest"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: devbox-kube < ENV.json (devbox kube runs it)")
		os.Exit(2)
	}
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "devbox-kube: "+err.Error())
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	// A field this helper does not know (a newer devbox's, with an older
	// helper on PATH) is an error, not a manifest without it.
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	var e kube.Env
	if err := dec.Decode(&e); err != nil {
		return fmt.Errorf("environment: %w", err)
	}
	m, err := manifest.YAML(e)
	if err != nil {
		return err
	}
	_, err = out.Write(m)
	return err
}
