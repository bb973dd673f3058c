// Package cgroups places processes in cgroups and applies OCI resource
// limits, on cgroup v2 (unified), v1 and the hybrid layout (v1 controllers
// under /sys/fs/cgroup/<controller>, cgroup2 at /sys/fs/cgroup/unified).
//
// CONTRACT (agreed with runtime/ and daemon/): the exported names and
// signatures in this file are what other packages call.
package cgroups

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

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
func New(path string) (Manager, error) {
	rel, err := cleanPath(path)
	if err != nil {
		return nil, err
	}
	l, err := detectLayout()
	if err != nil {
		return nil, err
	}
	if l.unified != "" && len(l.v1) == 0 {
		return &v2{dir: filepath.Join(l.unified, rel), root: l.unified}, nil
	}
	m := &v1{dirs: map[string]string{}}
	for ctrl, mnt := range l.v1 {
		m.dirs[ctrl] = filepath.Join(mnt, rel)
	}
	if l.unified != "" {
		// Hybrid: the limits live in v1; the unified hierarchy only
		// tracks the processes (it is where systemd and others look).
		m.track = &v2{dir: filepath.Join(l.unified, rel), root: l.unified}
	}
	return m, nil
}

// cleanPath turns a cgroupsPath into a clean relative path that cannot
// climb out of the hierarchy root.
func cleanPath(p string) (string, error) {
	if strings.Contains(p, ":") {
		return "", errdefs.InvalidParameterf("cgroups: systemd-style path %q not supported", p)
	}
	rel := strings.TrimPrefix(filepath.Clean("/"+p), "/")
	if rel == "" {
		return "", errdefs.InvalidParameterf("cgroups: empty cgroup path %q", p)
	}
	return rel, nil
}

// errUnsupported reports a limit the host cannot apply.
func errUnsupported(what string, err error) error {
	return fmt.Errorf("cgroups: %s not supported by this kernel or cgroup layout: %w", what, err)
}
