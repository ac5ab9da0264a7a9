package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/devbox/devbox/devenv/builder"
	"github.com/devbox/devbox/rootfs"
)

func (a *app) imageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage base images in the layer store",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  helpOnly,
	}
	cmd.AddCommand(a.imagePullCommand(), a.imageLsCommand(), a.imageRmCommand(), a.imagePruneCommand(), a.imageImportCommand())
	return cmd
}

// pullOptions shows a pull's progress on pr.
func pullOptions(pr *progress) rootfs.PullOptions {
	return rootfs.PullOptions{Progress: pr, Log: pr.Log}
}

// signalContext is cancelled by SIGINT or SIGTERM, so an interrupted pull
// stops cleanly (and a rerun finishes it).
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func (a *app) openStore() (*rootfs.Store, error) {
	return rootfs.Open(a.root)
}

func (a *app) imagePullCommand() *cobra.Command {
	var opts rootfs.PullOptions
	cmd := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull a base image into the layer store",
		Long: `Pull a base image into the layer store. REF is what a spec's base accepts:
a registry reference (centos:7, registry.corp:5000/team/base@sha256:…),
oci:DIR[:TAG], docker-archive:FILE, dir:PATH or debootstrap:SUITE[@MIRROR].`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			ref, err := rootfs.ParseRef(args[0], "")
			if err != nil {
				return usageError{err}
			}
			store, err := a.openStore()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			pr := newProgress(a.stderr)
			opts.Progress, opts.Log = pr, pr.Log
			start := time.Now()
			img, err := store.Pull(ctx, ref, opts)
			pr.Wait()
			if err != nil {
				return err
			}
			a.printf("%s %s (%d layers, %s) in %s\n", img.Ref, img.Digest, len(img.Layers), humanBytes(img.Size), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.Insecure, "insecure", false, "allow plain HTTP to a registry that is not local")
	cmd.Flags().BoolVar(&opts.Refresh, "refresh", false, "fetch dir: and debootstrap: bases again although stored")
	cmd.Flags().IntVar(&opts.Jobs, "jobs", 4, "layers to download at once")
	return cmd
}

func (a *app) imageLsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List stored images: ref, digest, size, age",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			store, err := a.openStoreIfExists()
			if err != nil {
				return err
			}
			imgs, err := store.Images()
			if err != nil {
				return err
			}
			if asJSON {
				if imgs == nil {
					imgs = []*rootfs.Image{}
				}
				return a.printJSON(imgs)
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "REF\tDIGEST\tLAYERS\tSIZE\tPULLED")
			for _, img := range imgs {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s ago\n", img.Ref, shortDigest(img.Digest), len(img.Layers), humanBytes(img.Size), time.Since(img.Pulled).Round(time.Second))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func (a *app) imageRmCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rm REF...",
		Short: "Forget stored images (their layers go with prune)",
		Args:  usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			store, err := a.openStore()
			if err != nil {
				return err
			}
			for _, arg := range args {
				ref, err := rootfs.ParseRef(arg, "")
				if err != nil {
					return usageError{err}
				}
				if err := store.RemoveImage(ref); err != nil {
					return err
				}
				a.printf("removed %s\n", ref)
			}
			return nil
		},
	}
}

func (a *app) imagePruneCommand() *cobra.Command {
	var caches bool
	cmd := &cobra.Command{
		Use:   "prune [--build-caches]",
		Short: "Delete layers no image, build or environment uses",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			store, err := a.openStore()
			if err != nil {
				return err
			}
			removed, freed, err := store.Prune()
			if err != nil {
				return err
			}
			a.printf("deleted %d layers, freed %s\n", len(removed), humanBytes(freed))
			if !caches {
				return nil
			}
			n, freed, err := builder.PruneCaches(a.root)
			if err != nil {
				return err
			}
			a.printf("emptied %d build caches, freed %s\n", n, humanBytes(freed))
			return nil
		},
	}
	cmd.Flags().BoolVar(&caches, "build-caches", false, "also empty the RUN --mount=type=cache directories no build is using (as docker builder prune)")
	return cmd
}

func (a *app) imageImportCommand() *cobra.Command {
	var as string
	cmd := &cobra.Command{
		Use:   "import FILE|DIR --name N",
		Short: "Import a docker-archive, OCI layout or root filesystem directory",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			if as == "" {
				return usageError{fmt.Errorf("import: --name is required")}
			}
			ref, err := rootfs.ParseRef(as, "")
			if err != nil || ref.Kind != rootfs.KindRegistry {
				return usageError{fmt.Errorf("import: --name %q must be an image name such as team/base:1", as)}
			}
			store, err := a.openStore()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			pr := newProgress(a.stderr)
			img, err := store.Import(ctx, args[0], ref, pullOptions(pr))
			pr.Wait()
			if err != nil {
				return err
			}
			a.printf("imported %s as %s (%s)\n", args[0], img.Ref, img.Digest)
			return nil
		},
	}
	cmd.Flags().StringVar(&as, "name", "", "name to store the image under (use it as a spec's base)")
	return cmd
}
