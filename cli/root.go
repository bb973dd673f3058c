// Package cli is berth's client: the docker-compatible commands, their flags
// and their output (tables, -q, --format Go templates, progress), talking to
// the daemon through the Engine API.
package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// StatusError carries the exit code a command must end with (as docker's
// CLI does: 125 daemon error, 126 cannot execute, 127 not found, or the
// container's own exit code for run/wait).
type StatusError struct {
	Status string
	Code   int
}

func (e StatusError) Error() string { return e.Status }

// ExitCode extracts the exit code a command asked for.
func ExitCode(err error) (int, bool) {
	var se StatusError
	if errors.As(err, &se) {
		return se.Code, true
	}
	return 0, false
}

// NewRootCommand returns the `berth` command with every client command.
// Global flags: -H/--host (then BERTH_HOST, DOCKER_HOST, the default socket).
func NewRootCommand(version string) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "A container engine",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	return root
}
