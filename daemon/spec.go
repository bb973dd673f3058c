package daemon

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// generateSpec builds the container's OCI runtime config. Caller holds c.mu.
func (d *Daemon) generateSpec(c *Container, rootfs string) (*specs.Spec, error) {
	return nil, nil // filled in when runtime/spec lands
}
