package daemon

import (
	"fmt"
	"path"
	"strings"

	"github.com/berth-dev/berth/runtime/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// generateSpec builds the container's OCI runtime config from its merged
// configuration. Caller holds c.mu.
func (d *Daemon) generateSpec(c *Container, rootfs string) (*specs.Spec, error) {
	hc := c.HostConfig
	opts := spec.Options{
		ID:             c.ID,
		Rootfs:         rootfs,
		Args:           append([]string{c.Path}, c.Args...),
		Env:            c.Config.Env,
		Cwd:            c.Config.WorkingDir,
		User:           c.Config.User,
		Hostname:       c.Config.Hostname,
		Tty:            c.Config.Tty,
		ReadonlyRootfs: hc.ReadonlyRootfs,
		IpcMode:        string(hc.IpcMode),
		PidMode:        string(hc.PidMode),
		Privileged:     hc.Privileged,
		CapAdd:         hc.CapAdd,
		CapDrop:        hc.CapDrop,
		SecurityOpt:    hc.SecurityOpt,
		Memory:         hc.Memory,
		MemorySwap:     hc.MemorySwap,
		NanoCPUs:       hc.NanoCPUs,
		CPUShares:      hc.CPUShares,
		ShmSize:        hc.ShmSize,
		Sysctls:        hc.Sysctls,
		OomScoreAdj:    hc.OomScoreAdj,
		CgroupsPath:    path.Join(d.cgroupParent(), c.ID),
	}
	if hc.PidsLimit != nil {
		opts.PidsLimit = *hc.PidsLimit
	}
	switch mode := string(hc.NetworkMode); mode {
	case "host":
		opts.NetworkMode = "host"
		opts.Hostname = "" // the host's UTS namespace is not shared, but its name is
	default:
		opts.NetworkMode = d.netnsMode(c)
	}
	for _, u := range hc.Ulimits {
		if u == nil {
			continue
		}
		opts.Ulimits = append(opts.Ulimits, specs.POSIXRlimit{
			Type: "RLIMIT_" + strings.ToUpper(u.Name), Hard: uint64(u.Hard), Soft: uint64(u.Soft),
		})
	}
	for _, f := range []struct{ src, dst string }{
		{c.hostnamePath(), "/etc/hostname"},
		{c.hostsPath(), "/etc/hosts"},
		{c.resolvConfPath(), "/etc/resolv.conf"},
	} {
		opts.Mounts = append(opts.Mounts, specs.Mount{
			Destination: f.dst, Type: "bind", Source: f.src,
			Options: []string{"rbind", "rprivate"},
		})
	}
	vm, err := d.volumeSpecMounts(c, rootfs) // volumes.go: volumes, binds, tmpfs
	if err != nil {
		return nil, err
	}
	opts.Mounts = append(opts.Mounts, vm...)
	d.secOptions(c, &opts)
	s, err := spec.Generate(opts)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.ID, err)
	}
	if err := d.adjustSpec(c, s); err != nil {
		return nil, err
	}
	return s, nil
}

func (d *Daemon) cgroupParent() string {
	if d.cfg.CgroupParent != "" {
		return d.cfg.CgroupParent
	}
	return "/berth"
}
