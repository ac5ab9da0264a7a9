package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/devbox/devbox/devenv/portable"
)

func (a *app) pushCommand() *cobra.Command {
	var insecure bool
	cmd := &cobra.Command{
		Use:   "push NAME REF",
		Short: "Publish a built environment as an OCI image that serves SSH anywhere",
		Long: `Publish NAME's build (base, packages, Node, …; not its writable layer) as an
OCI image at REF whose entrypoint is devbox's own SSH server, in a layer of
its own under /.devbox. It runs under podman, Docker or Kubernetes with the
spec's user, environment, workdir and public keys. What the build keeps
for this host stays here: password hashes in /etc/shadow (and gshadow,
passwd) are locked, npm and Yarn tokens are left out of npmrc files, and
files holding a private key (host keys, generated keys) are left out; each
is named on stderr. The runtime adds logins with DEVBOX_AUTHORIZED_KEYS and
DEVBOX_PASSWORD_HASH (a crypt hash), or with the files authorized_keys,
password_hash and host_key of a secret mounted at /etc/devbox; without a
host key there, one is made at each start and its fingerprint printed.`,
		Example: `  devbox push web registry.example.com/team/web:1
  podman run -d -p 127.0.0.1:2222:22 -e DEVBOX_AUTHORIZED_KEYS="$(cat ~/.ssh/id_ed25519.pub)" registry.example.com/team/web:1
  ssh -p 2222 root@127.0.0.1`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(_ *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			p, err := a.envs().Push(ctx, args[0], args[1], insecure)
			if err != nil {
				return err
			}
			for _, l := range p.Redacted {
				fmt.Fprintf(a.stderr, "push: %s\n", l)
			}
			a.printf("pushed %s as %s\n", args[0], p.Image())
			return nil
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP to a registry that is not local")
	return cmd
}

func (a *app) kubeCommand() *cobra.Command {
	var image, namespace string
	cmd := &cobra.Command{
		Use:   "kube NAME",
		Short: "Print Kubernetes manifests that run NAME's pushed image",
		Long: `Print a Secret (the SSH host key, authorized keys and, when the spec
sets a password, its crypt hash as password_hash), a Deployment of one
replica and a Service (SSH and the spec's ports) that run the image devbox
push last published for NAME (or --image). The host key is made once for
NAME and kept, so applying again does not change it.`,
		Example: `  devbox kube web | kubectl apply -f -
  kubectl port-forward service/web 2222:22
  ssh -p 2222 root@127.0.0.1`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			m, fp, err := a.envs().Kube(args[0], image, namespace)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "devbox: %s's host key in the cluster: %s\n", args[0], fp)
			_, err = a.stdout.Write(m)
			return err
		},
	}
	cmd.Flags().StringVar(&image, "image", "", "image to run (default: where devbox push last published NAME)")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the objects (default: kubectl's)")
	return cmd
}

// serveCommand is the entrypoint of the images push makes; it is not
// for use on a host.
func (a *app) serveCommand() *cobra.Command {
	return &cobra.Command{
		Use:    portable.ServeArg,
		Short:  "Serve SSH as the entrypoint of an image made by devbox push",
		Hidden: true,
		Args:   usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			return portable.Serve(portable.ProcessSource(), a.stderr)
		},
	}
}
