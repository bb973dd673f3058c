package cli

import "github.com/spf13/cobra"

// addExecCommands adds this area's commands.
func addExecCommands(root, containerCmd *cobra.Command, env *Env) {}
