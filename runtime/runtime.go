// Package runtime runs OCI bundles. It holds the runtime interface the shim
// uses, the built-in Linux runtime (namespaces, mounts, pivot_root, cgroups,
// capabilities, seccomp, rlimits, user) and a driver for external OCI runtime
// binaries such as runc. Subpackages: spec (Docker-default OCI config
// generation) and the pieces of the built-in runtime.
//
// CONTRACT (agreed with shim/ and daemon/): the exported names and signatures
// in this file are what other packages call.
package runtime

import (
	"context"
	"os"
	"syscall"
	"time"
)

// IO is the stdio of the container process. When the bundle's
// process.terminal is true, Stdin/Stdout/Stderr are ignored and the runtime
// creates a pty whose master it returns in Process.Console.
type IO struct {
	Stdin  *os.File // nil: /dev/null
	Stdout *os.File // nil: /dev/null
	Stderr *os.File // nil: /dev/null
}

// Process is a started container process.
type Process interface {
	// Pid is the host pid of the container's init process.
	Pid() int
	// Console is the pty master when the process has a terminal, else nil.
	Console() *os.File
	// Signal sends sig to the container's init process.
	Signal(sig syscall.Signal) error
	// Wait blocks until the process exits and reports how.
	Wait() (ExitStatus, error)
}

// ExitStatus is how a container process ended.
type ExitStatus struct {
	// Code is the exit code, or 128+signal when killed by a signal.
	Code      int
	Signal    syscall.Signal // the killing signal, 0 if it exited
	OOMKilled bool
	ExitedAt  time.Time
}

// Runtime creates and starts containers from bundles.
type Runtime interface {
	// Start creates the container described by bundle/config.json (with its
	// root already prepared at root.path) and starts its process. It returns
	// once the user's process has been exec'd, or an error whose message
	// contains Docker's words for the failure ("executable file not found in
	// $PATH", "no such file or directory", "permission denied") so that
	// clients map it to exit codes 127 and 126.
	Start(ctx context.Context, id, bundle string, stdio IO) (Process, error)
	// Delete releases what Start acquired for the container (cgroups, state)
	// once its process has exited. Deleting an unknown id is not an error.
	Delete(ctx context.Context, id string) error
}

// Options select and configure a runtime.
type Options struct {
	// Name is "" or "berth" for the built-in runtime, else the path or name
	// of an OCI runtime binary (runc).
	Name string
	// StateDir is where the runtime keeps per-container state.
	StateDir string
	// CgroupParent is the cgroup path under which container cgroups are made
	// (default "/berth").
	CgroupParent string
	// Preboot, when set, is a container init started in advance; the
	// built-in runtime's first Start whose namespaces fit takes it over.
	Preboot *Preboot
}

// New returns the runtime selected by opts.
//
// An external runtime (runc) leaves the container process orphaned when its
// `create` command exits, so the caller of New must be a child subreaper to
// be able to reap it: New sets PR_SET_CHILD_SUBREAPER on the calling process
// in that case (the shim is meant to be that process).
func New(opts Options) (Runtime, error) {
	if opts.CgroupParent == "" {
		opts.CgroupParent = "/berth"
	}
	switch opts.Name {
	case "", "berth":
		return newBuiltin(opts), nil
	default:
		return newExternal(opts)
	}
}

// InitMain is the entry point of the hidden container-init mode of the
// berth binary (argv[1] == "__init"). It never returns on success: it sets
// up the container from inside its namespaces and execs the user process.
func InitMain() { initMain() }
