package runtime

import (
	"context"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Execer is implemented by runtimes that can start an extra process in a
// running container (docker exec). The process joins the container's
// namespaces and cgroup and gets proc's credentials, capabilities,
// rlimits, environment and working directory; the container's seccomp
// filter and no_new_privs (when proc asks for it) apply as at start.
type Execer interface {
	// Exec starts proc in container id (whose bundle is bundle). When
	// proc.Terminal is true, stdio is ignored and the returned Process has
	// a Console. Errors keep Docker's words ("executable file not found in
	// $PATH", "no such file or directory", "permission denied").
	Exec(ctx context.Context, id, bundle string, proc *specs.Process, stdio IO) (Process, error)
}
