package main

import (
	"github.com/spf13/cobra"
)

// newRegistryCommand wires `berth registry serve|gc` (owned with registry/).
func newRegistryCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "registry",
		Short: "Run an OCI Distribution registry",
	}
}
