// Package cgroups places processes in cgroups and applies OCI resource
// limits, on cgroup v2 (unified), v1 and the hybrid layout (v1 controllers
// under /sys/fs/cgroup/<controller>, cgroup2 at /sys/fs/cgroup/unified).
//
// CONTRACT (agreed with runtime/ and daemon/): the exported names and
// signatures in this file are what other packages call.
package cgroups

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var errTODO = errors.New("cgroups: not implemented yet")

// Manager is one container's cgroup (one directory per v1 controller, or
// one v2 directory).
type Manager interface {
	// Apply creates the cgroup if needed and moves pid into it.
	Apply(pid int) error
	// Set writes the resource limits.
	Set(r *specs.LinuxResources) error
	// OOMKilled reports whether the kernel OOM-killed a process of this
	// cgroup (memory.events oom_kill on v2, memory.oom_control on v1).
	OOMKilled() (bool, error)
	// Stats returns current memory usage in bytes and the pids count.
	Stats() (Stats, error)
	// Destroy kills what is left in the cgroup and removes its directories.
	Destroy() error
}

// Stats is a snapshot of a cgroup's usage.
type Stats struct {
	MemoryUsage uint64
	MemoryLimit uint64
	Pids        uint64
	CPUUsageNs  uint64
}

// New returns the manager for the cgroup at path (relative to the
// hierarchy roots, like "/berth/<id>"), detecting the host's layout.
func New(path string) (Manager, error) { return nil, errTODO }
