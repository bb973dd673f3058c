package daemon

import (
	"fmt"
	"path"
	"strings"

	"github.com/berth-dev/berth/errdefs"
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
	for dst, o := range hc.Tmpfs {
		mo := []string{"nosuid", "nodev", "noexec"}
		if o != "" {
			mo = append(mo, o)
		}
		opts.Mounts = append(opts.Mounts, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: mo})
	}
	for _, b := range hc.Binds {
		m, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		opts.Mounts = append(opts.Mounts, m)
	}
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

// parseBind turns "src:dst[:ro|rw]" into a bind mount; named volumes come
// with the volume issue.
func parseBind(b string) (specs.Mount, error) {
	parts := strings.Split(b, ":")
	if len(parts) < 2 || len(parts) > 3 || !path.IsAbs(parts[0]) || !path.IsAbs(parts[1]) {
		return specs.Mount{}, errdefs.InvalidParameterf("invalid volume specification: '%s'", b)
	}
	opts := []string{"rbind", "rprivate"}
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				opts = append(opts, "ro")
			case "rw", "z", "Z", "":
			default:
				return specs.Mount{}, errdefs.InvalidParameterf("invalid mode: %s", o)
			}
		}
	}
	return specs.Mount{Destination: path.Clean(parts[1]), Type: "bind", Source: path.Clean(parts[0]), Options: opts}, nil
}
