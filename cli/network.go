package cli

import "github.com/spf13/cobra"

// addNetworkCommands adds this area's commands.
func addNetworkCommands(root *cobra.Command, env *Env) {}
