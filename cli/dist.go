package cli

import "github.com/spf13/cobra"

// addDistributionCommands adds this area's commands.
func addDistributionCommands(root, imageCmd *cobra.Command, env *Env) {}
