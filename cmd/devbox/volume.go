package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/devbox/devbox/devenv"
)

func (a *app) volumeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "Manage named volumes (kept across down, up and rm)",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  helpOnly,
	}
	cmd.AddCommand(a.volumeLsCommand(), a.volumeRmCommand())
	return cmd
}

func (a *app) volumeLsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls [--json]",
		Short: "List named volumes and the running environments that mount them",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			vols, err := a.envs().Volumes()
			if err != nil {
				return err
			}
			if asJSON {
				if vols == nil {
					vols = []devenv.VolumeInfo{}
				}
				return a.printJSON(vols)
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tUSED BY")
			for _, v := range vols {
				fmt.Fprintf(w, "%s\t%s\n", v.Name, orDash(strings.Join(v.UsedBy, ",")))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) volumeRmCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME...",
		Short: "Delete named volumes and their contents (not while an environment mounts them)",
		Args:  usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			for _, name := range args {
				if err := a.envs().RemoveVolume(name); err != nil {
					return err
				}
				a.printf("removed %s\n", name)
			}
			return nil
		},
	}
}
