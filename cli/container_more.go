package cli

import "github.com/spf13/cobra"

// addContainerMoreCommands adds this area's commands.
func addContainerMoreCommands(root, containerCmd *cobra.Command, env *Env) {
	addContainerCtrCommands(root, containerCmd, env) // container_ctr.go: pause, unpause, top, stats
	addContainerSecCommands(root, containerCmd, env)
}
