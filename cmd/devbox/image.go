package main

import (
	"github.com/spf13/cobra"
)

func (a *app) imageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage base images in the layer store",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  helpOnly,
	}
	pull := notImplemented("pull REF", "Pull a base image into the layer store", cobra.ExactArgs(1))
	pull.Flags().Bool("insecure", false, "allow plain HTTP to a registry that is not local")
	pull.Flags().Bool("refresh", false, "pull again even if the image is stored (debootstrap:, dir:)")
	ls := notImplemented("ls", "List stored images: ref, digest, size, age", cobra.NoArgs)
	ls.Flags().Bool("json", false, "print JSON")
	rm := notImplemented("rm REF...", "Forget stored images (their layers go with prune)", cobra.MinimumNArgs(1))
	prune := notImplemented("prune", "Delete layers no image, build or environment uses", cobra.NoArgs)
	imp := notImplemented("import FILE|DIR --name N", "Import a docker-archive, OCI layout or root filesystem directory", cobra.ExactArgs(1))
	imp.Flags().String("name", "", "name to store the image under")
	cmd.AddCommand(pull, ls, rm, prune, imp)
	return cmd
}
