package main

import (
	"github.com/spf13/cobra"
)

func newDaemonCommand(version string) *cobra.Command {
	return &cobra.Command{
		Use:   "daemon",
		Short: "Run the berth daemon",
		RunE: func(cmd *cobra.Command, args []string) error {
			return nil
		},
	}
}
