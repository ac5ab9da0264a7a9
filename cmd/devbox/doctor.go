package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) doctorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check that the host still serves the running environments (routes to their addresses)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			problems, checked, err := a.envs().Doctor()
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintln(a.stdout, p)
			}
			if len(problems) > 0 {
				return fmt.Errorf("%d problem(s) in %d running environment(s) on the bridge", len(problems), checked)
			}
			fmt.Fprintf(a.stdout, "ok: %d running environment(s) on the bridge, each routed to it\n", checked)
			return nil
		},
	}
}
