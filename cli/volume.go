package cli

import "github.com/spf13/cobra"

// addVolumeCommands adds this area's commands.
func addVolumeCommands(root *cobra.Command, env *Env) {}
