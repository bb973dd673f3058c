package cli

import "github.com/spf13/cobra"

// addBuildCommands adds this area's commands.
func addBuildCommands(root, imageCmd *cobra.Command, env *Env) {}
