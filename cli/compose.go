package cli

import "github.com/spf13/cobra"

// addComposeCommands adds this area's commands.
func addComposeCommands(root *cobra.Command, env *Env) {}
