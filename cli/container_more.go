package cli

import "github.com/spf13/cobra"

// addContainerMoreCommands adds this area's commands.
func addContainerMoreCommands(root, containerCmd *cobra.Command, env *Env) {
	addContainerSecCommands(root, containerCmd, env)
}
