package compose

import (
	"fmt"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// ImageName is the image a service runs: its `image:`, or for a service that
// only has a `build:` section, <project>-<service> as docker compose names it.
func ImageName(p *types.Project, s types.ServiceConfig) string {
	if s.Image != "" {
		return s.Image
	}
	return p.Name + "-" + s.Name
}

// ContainerName is <project>-<service>-<n>, or the service's container_name.
func ContainerName(p *types.Project, s types.ServiceConfig, n int) string {
	if s.ContainerName != "" {
		return s.ContainerName
	}
	return fmt.Sprintf("%s-%s-%d", p.Name, s.Name, n)
}

// serviceNetworks lists the service's networks, highest priority first (then
// by name), which is the order compose attaches them in.
func serviceNetworks(s types.ServiceConfig) []string {
	names := make([]string, 0, len(s.Networks))
	for n := range s.Networks {
		names = append(names, n)
	}
	prio := func(n string) int {
		if c := s.Networks[n]; c != nil {
			return c.Priority
		}
		return 0
	}
	sort.Slice(names, func(i, j int) bool {
		if pi, pj := prio(names[i]), prio(names[j]); pi != pj {
			return pi > pj
		}
		return names[i] < names[j]
	})
	return names
}

// networkName is the engine's name for a project network key.
func networkName(p *types.Project, key string) string {
	if n, ok := p.Networks[key]; ok && n.Name != "" {
		return n.Name
	}
	return p.Name + "_" + key
}

// volumeName is the engine's name for a project volume key.
func volumeName(p *types.Project, key string) string {
	if v, ok := p.Volumes[key]; ok && v.Name != "" {
		return v.Name
	}
	return p.Name + "_" + key
}

// endpoint is the endpoint configuration for one of the service's networks:
// the service name is always an alias, so peers reach it by name.
func endpoint(s types.ServiceConfig, key string) *network.EndpointSettings {
	ep := &network.EndpointSettings{}
	c := s.Networks[key]
	if c.ServiceNameAliasEnabled() {
		ep.Aliases = append(ep.Aliases, s.Name)
	}
	if c != nil {
		ep.Aliases = append(ep.Aliases, c.Aliases...)
		if c.Ipv4Address != "" || c.Ipv6Address != "" {
			ep.IPAMConfig = &network.EndpointIPAMConfig{}
			if a, err := netip.ParseAddr(c.Ipv4Address); err == nil {
				ep.IPAMConfig.IPv4Address = a
			}
			if a, err := netip.ParseAddr(c.Ipv6Address); err == nil {
				ep.IPAMConfig.IPv6Address = a
			}
		}
		ep.DriverOpts = c.DriverOpts
	}
	return ep
}

// containerSpec is what `up` creates for replica n of a service, plus the
// networks to connect after creation (the create call carries only one).
type containerSpec struct {
	Create     client.ContainerCreateOptions
	MoreNets   map[string]*network.EndpointSettings // engine network name → endpoint
	ConfigHash string
}

// buildContainer converts a service into a container create request.
// imageID fills the image label; oneoff marks `compose run` containers.
func buildContainer(p *types.Project, s types.ServiceConfig, n int, name, imageID string, oneoff bool) (containerSpec, error) {
	hash, err := ConfigHash(s)
	if err != nil {
		return containerSpec{}, err
	}
	labels := map[string]string{}
	for k, v := range s.Labels {
		labels[k] = v
	}
	for k, v := range s.CustomLabels {
		labels[k] = v
	}
	labels[LabelProject] = p.Name
	labels[LabelService] = s.Name
	labels[LabelNumber] = strconv.Itoa(n)
	labels[LabelConfigHash] = hash
	labels[LabelOneoff] = pyBool(oneoff)
	labels[LabelVersion] = ComposeVersion
	labels[LabelWorkingDir] = p.WorkingDir
	labels[LabelConfigFiles] = strings.Join(p.ComposeFiles, ",")
	if imageID != "" {
		labels[LabelImage] = imageID
	}
	if deps := dependsOnLabel(s); deps != "" {
		labels[LabelDependsOn] = deps
	}

	cfg := &container.Config{
		Image:        ImageName(p, s),
		Hostname:     s.Hostname,
		Domainname:   s.DomainName,
		User:         s.User,
		WorkingDir:   s.WorkingDir,
		Tty:          s.Tty,
		OpenStdin:    s.StdinOpen,
		StopSignal:   s.StopSignal,
		Labels:       labels,
		Env:          envList(s.Environment),
		ExposedPorts: network.PortSet{},
		Volumes:      map[string]struct{}{},
	}
	if s.Command != nil {
		cfg.Cmd = []string(s.Command)
	}
	if s.Entrypoint != nil {
		cfg.Entrypoint = []string(s.Entrypoint)
	}
	if s.StopGracePeriod != nil {
		t := int(time.Duration(*s.StopGracePeriod).Seconds())
		cfg.StopTimeout = &t
	}
	if s.HealthCheck != nil {
		cfg.Healthcheck = healthConfig(s.HealthCheck)
	}

	hc := &container.HostConfig{
		PortBindings:   network.PortMap{},
		RestartPolicy:  restartPolicy(s),
		CapAdd:         s.CapAdd,
		CapDrop:        s.CapDrop,
		Privileged:     s.Privileged,
		ReadonlyRootfs: s.ReadOnly,
		Init:           s.Init,
		DNS:            addrs(s.DNS),
		DNSSearch:      s.DNSSearch,
		DNSOptions:     s.DNSOpts,
		ExtraHosts:     s.ExtraHosts.AsList(":"),
		GroupAdd:       s.GroupAdd,
		IpcMode:        container.IpcMode(s.Ipc),
		PidMode:        container.PidMode(s.Pid),
		UTSMode:        container.UTSMode(s.Uts),
		SecurityOpt:    s.SecurityOpt,
		Sysctls:        s.Sysctls,
		ShmSize:        int64(s.ShmSize),
		Runtime:        s.Runtime,
		Tmpfs:          map[string]string{},
	}
	if s.Logging != nil {
		hc.LogConfig = container.LogConfig{Type: s.Logging.Driver, Config: s.Logging.Options}
	}
	for name, u := range s.Ulimits {
		soft, hard := int64(u.Soft), int64(u.Hard)
		if u.Single != 0 {
			soft, hard = int64(u.Single), int64(u.Single)
		}
		hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: name, Soft: soft, Hard: hard})
	}
	sort.Slice(hc.Ulimits, func(i, j int) bool { return hc.Ulimits[i].Name < hc.Ulimits[j].Name })
	resources(s, &hc.Resources)

	for _, e := range s.Expose {
		port := e
		if !strings.Contains(port, "/") {
			port += "/tcp"
		}
		if pp, err := network.ParsePort(port); err == nil {
			cfg.ExposedPorts[pp] = struct{}{}
		}
	}
	for _, pc := range s.Ports {
		proto := pc.Protocol
		if proto == "" {
			proto = "tcp"
		}
		pp, err := network.ParsePort(fmt.Sprintf("%d/%s", pc.Target, proto))
		if err != nil {
			return containerSpec{}, fmt.Errorf("service %s: port %d: %w", s.Name, pc.Target, err)
		}
		cfg.ExposedPorts[pp] = struct{}{}
		b := network.PortBinding{HostPort: pc.Published}
		if pc.HostIP != "" {
			ip, err := netip.ParseAddr(pc.HostIP)
			if err != nil {
				return containerSpec{}, fmt.Errorf("service %s: port host_ip %q: %w", s.Name, pc.HostIP, err)
			}
			b.HostIP = ip
		}
		hc.PortBindings[pp] = append(hc.PortBindings[pp], b)
	}

	if err := mounts(p, s, cfg, hc); err != nil {
		return containerSpec{}, err
	}

	spec := containerSpec{ConfigHash: hash, MoreNets: map[string]*network.EndpointSettings{}}
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	switch {
	case s.NetworkMode != "":
		hc.NetworkMode = container.NetworkMode(s.NetworkMode)
		if rest, ok := strings.CutPrefix(s.NetworkMode, "service:"); ok {
			// Resolved by the caller to the peer's first container.
			hc.NetworkMode = container.NetworkMode("container:" + p.Name + "-" + rest + "-1")
		}
	default:
		for i, key := range serviceNetworks(s) {
			name := networkName(p, key)
			ep := endpoint(s, key)
			if i == 0 {
				hc.NetworkMode = container.NetworkMode(name)
				netCfg.EndpointsConfig[name] = ep
				continue
			}
			spec.MoreNets[name] = ep
		}
	}
	if len(cfg.ExposedPorts) == 0 {
		cfg.ExposedPorts = nil
	}
	if len(cfg.Volumes) == 0 {
		cfg.Volumes = nil
	}
	if len(hc.Tmpfs) == 0 {
		hc.Tmpfs = nil
	}
	spec.Create = client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc, NetworkingConfig: netCfg}
	return spec, nil
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// dependsOnLabel is compose's "svc:condition:restart,..." form.
func dependsOnLabel(s types.ServiceConfig) string {
	var parts []string
	for name, d := range s.DependsOn {
		parts = append(parts, fmt.Sprintf("%s:%s:%t", name, d.Condition, d.Restart))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// envList is the environment as KEY=VALUE, sorted; a variable with no value
// (listed but unset in compose's environment) is left out.
func envList(m types.MappingWithEquals) []string {
	var out []string
	for k, v := range m {
		if v == nil {
			continue
		}
		out = append(out, k+"="+*v)
	}
	sort.Strings(out)
	return out
}

func addrs(in []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range in {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

func healthConfig(h *types.HealthCheckConfig) *container.HealthConfig {
	if h.Disable {
		return &container.HealthConfig{Test: []string{"NONE"}}
	}
	c := &container.HealthConfig{Test: []string(h.Test)}
	d := func(p *types.Duration) time.Duration {
		if p == nil {
			return 0
		}
		return time.Duration(*p)
	}
	c.Interval, c.Timeout, c.StartPeriod, c.StartInterval = d(h.Interval), d(h.Timeout), d(h.StartPeriod), d(h.StartInterval)
	if h.Retries != nil {
		c.Retries = int(*h.Retries)
	}
	return c
}

// restartPolicy reads `restart:` (or deploy.restart_policy when that is all
// there is).
func restartPolicy(s types.ServiceConfig) container.RestartPolicy {
	r := s.Restart
	if r == "" && s.Deploy != nil && s.Deploy.RestartPolicy != nil {
		rp := s.Deploy.RestartPolicy
		switch rp.Condition {
		case "any":
			r = "always"
		case "on-failure":
			r = "on-failure"
			if rp.MaxAttempts != nil {
				r += ":" + strconv.FormatUint(*rp.MaxAttempts, 10)
			}
		case "none":
			r = "no"
		}
	}
	name, count, _ := strings.Cut(r, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if name == "" {
		p.Name = container.RestartPolicyDisabled
	}
	p.MaximumRetryCount, _ = strconv.Atoi(count)
	return p
}

// resources applies the service-level limits, then deploy.resources.limits
// (which win, as in compose).
func resources(s types.ServiceConfig, r *container.Resources) {
	r.Memory = int64(s.MemLimit)
	r.MemoryReservation = int64(s.MemReservation)
	r.MemorySwap = int64(s.MemSwapLimit)
	r.CPUShares = s.CPUShares
	r.CPUQuota = s.CPUQuota
	r.CPUPeriod = s.CPUPeriod
	r.CpusetCpus = s.CPUSet
	r.CgroupParent = s.CgroupParent
	if s.CPUS > 0 {
		r.NanoCPUs = int64(float64(s.CPUS) * 1e9)
	}
	if s.PidsLimit != 0 {
		v := s.PidsLimit
		r.PidsLimit = &v
	}
	if s.Deploy == nil {
		return
	}
	if l := s.Deploy.Resources.Limits; l != nil {
		if l.MemoryBytes > 0 {
			r.Memory = int64(l.MemoryBytes)
		}
		if l.NanoCPUs > 0 {
			r.NanoCPUs = int64(float64(l.NanoCPUs) * 1e9)
		}
		if l.Pids != 0 {
			v := l.Pids
			r.PidsLimit = &v
		}
	}
	if rs := s.Deploy.Resources.Reservations; rs != nil && rs.MemoryBytes > 0 {
		r.MemoryReservation = int64(rs.MemoryBytes)
	}
}

// mounts turns volumes, tmpfs, secrets and configs into Binds (which create
// a missing host path, as docker compose does by default), Tmpfs and Mounts
// (for options only the mount API carries).
func mounts(p *types.Project, s types.ServiceConfig, cfg *container.Config, hc *container.HostConfig) error {
	for _, t := range s.Tmpfs {
		target, opts, _ := strings.Cut(t, ":")
		hc.Tmpfs[target] = opts
	}
	for _, v := range s.Volumes {
		switch v.Type {
		case types.VolumeTypeVolume:
			if v.Source == "" {
				cfg.Volumes[v.Target] = struct{}{}
				continue
			}
			name := volumeName(p, v.Source)
			if v.Volume != nil && v.Volume.Subpath != "" {
				hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: name, Target: v.Target, ReadOnly: v.ReadOnly,
					VolumeOptions: &mount.VolumeOptions{NoCopy: v.Volume.NoCopy, Subpath: v.Volume.Subpath}})
				continue
			}
			opts := []string{"rw"}
			if v.ReadOnly {
				opts[0] = "ro"
			}
			if v.Volume != nil && v.Volume.NoCopy {
				opts = append(opts, "nocopy")
			}
			hc.Binds = append(hc.Binds, name+":"+v.Target+":"+strings.Join(opts, ","))
		case types.VolumeTypeBind:
			if v.Bind != nil && !bool(v.Bind.CreateHostPath) {
				// The mount API refuses a missing host path, which is what
				// create_host_path: false asks for.
				m := mount.Mount{Type: mount.TypeBind, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
				if v.Bind.Propagation != "" {
					m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(v.Bind.Propagation)}
				}
				hc.Mounts = append(hc.Mounts, m)
				continue
			}
			opts := []string{"rw"}
			if v.ReadOnly {
				opts[0] = "ro"
			}
			if v.Bind != nil {
				if v.Bind.SELinux != "" {
					opts = append(opts, v.Bind.SELinux)
				}
				if v.Bind.Propagation != "" {
					opts = append(opts, v.Bind.Propagation)
				}
			}
			hc.Binds = append(hc.Binds, v.Source+":"+v.Target+":"+strings.Join(opts, ","))
		case types.VolumeTypeTmpfs:
			var opts []string
			if v.Tmpfs != nil {
				if v.Tmpfs.Size > 0 {
					opts = append(opts, fmt.Sprintf("size=%d", v.Tmpfs.Size))
				}
				if v.Tmpfs.Mode != 0 {
					opts = append(opts, fmt.Sprintf("mode=%o", v.Tmpfs.Mode))
				}
			}
			hc.Tmpfs[v.Target] = strings.Join(opts, ",")
		default:
			return fmt.Errorf("service %s: volume type %q is not supported", s.Name, v.Type)
		}
	}
	// File-backed secrets and configs are read-only binds, where compose
	// puts them; inline ones are copied in after creation (see copyInline).
	for _, ref := range s.Secrets {
		sec, ok := p.Secrets[ref.Source]
		if !ok || sec.File == "" {
			continue
		}
		target := ref.Target
		if target == "" {
			target = ref.Source
		}
		if !path.IsAbs(target) {
			target = "/run/secrets/" + target
		}
		hc.Binds = append(hc.Binds, sec.File+":"+target+":ro")
	}
	for _, ref := range s.Configs {
		c, ok := p.Configs[ref.Source]
		if !ok || c.File == "" {
			continue
		}
		target := ref.Target
		if target == "" {
			target = "/" + ref.Source
		}
		hc.Binds = append(hc.Binds, c.File+":"+target+":ro")
	}
	return nil
}
