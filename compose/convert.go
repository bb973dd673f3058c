package compose

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// containerName is <project>-<service>-<n>, or the service's container_name.
func containerName(p *types.Project, s types.ServiceConfig, n int) string {
	if s.ContainerName != "" {
		return s.ContainerName
	}
	return fmt.Sprintf("%s-%s-%d", p.Name, s.Name, n)
}

// projectLabels are the labels every container of the project carries.
func (c *Service) projectLabels(p *types.Project) map[string]string {
	return map[string]string{
		LabelProject:     p.Name,
		LabelWorkingDir:  p.WorkingDir,
		LabelConfigFiles: strings.Join(p.ComposeFiles, ","),
		LabelVersion:     c.version(),
	}
}

func (c *Service) version() string {
	if c.Version != "" {
		return c.Version
	}
	return DefaultVersion
}

// dependsOnLabel is docker compose's service:condition:restart list.
func dependsOnLabel(s types.ServiceConfig) string {
	var deps []string
	for name, d := range s.DependsOn {
		deps = append(deps, fmt.Sprintf("%s:%s:%t", name, d.Condition, d.Restart))
	}
	slices.Sort(deps)
	return strings.Join(deps, ",")
}

// createOptions turns service s, replica n, into a container create call.
func (c *Service) createOptions(p *types.Project, s types.ServiceConfig, n int, hash, imageID string, oneoff bool) (client.ContainerCreateOptions, error) {
	labels := c.projectLabels(p)
	for k, v := range s.Labels {
		labels[k] = v
	}
	labels[LabelService] = s.Name
	labels[LabelNumber] = strconv.Itoa(n)
	labels[LabelConfigHash] = hash
	labels[LabelOneoff] = "False"
	if oneoff {
		labels[LabelOneoff] = "True"
	}
	labels[LabelDependsOn] = dependsOnLabel(s)
	if imageID != "" {
		labels[LabelImage] = imageID
	}

	cfg := &container.Config{
		Image:        imageName(p, s),
		Labels:       labels,
		Cmd:          []string(s.Command),
		Entrypoint:   []string(s.Entrypoint),
		Env:          environ(s.Environment),
		User:         s.User,
		WorkingDir:   s.WorkingDir,
		Hostname:     s.Hostname,
		Domainname:   s.DomainName,
		Tty:          s.Tty,
		OpenStdin:    s.StdinOpen,
		StopSignal:   s.StopSignal,
		ExposedPorts: network.PortSet{},
	}
	if s.StopGracePeriod != nil {
		secs := int(time.Duration(*s.StopGracePeriod).Seconds())
		cfg.StopTimeout = &secs
	}
	if hc := s.HealthCheck; hc != nil {
		h := &container.HealthConfig{Test: []string(hc.Test)}
		if hc.Disable {
			h.Test = []string{"NONE"}
		}
		if hc.Interval != nil {
			h.Interval = time.Duration(*hc.Interval)
		}
		if hc.Timeout != nil {
			h.Timeout = time.Duration(*hc.Timeout)
		}
		if hc.StartPeriod != nil {
			h.StartPeriod = time.Duration(*hc.StartPeriod)
		}
		if hc.StartInterval != nil {
			h.StartInterval = time.Duration(*hc.StartInterval)
		}
		if hc.Retries != nil {
			h.Retries = int(*hc.Retries)
		}
		cfg.Healthcheck = h
	}

	hc := &container.HostConfig{
		PortBindings:   network.PortMap{},
		RestartPolicy:  restartPolicy(s),
		CapAdd:         s.CapAdd,
		CapDrop:        s.CapDrop,
		Privileged:     s.Privileged,
		ReadonlyRootfs: s.ReadOnly,
		SecurityOpt:    s.SecurityOpt,
		Init:           s.Init,
		DNS:            dnsAddrs(s.DNS),
		DNSSearch:      s.DNSSearch,
		DNSOptions:     s.DNSOpts,
		ExtraHosts:     s.ExtraHosts.AsList(":"),
		Sysctls:        map[string]string(s.Sysctls),
		GroupAdd:       s.GroupAdd,
		ShmSize:        int64(s.ShmSize),
		Tmpfs:          map[string]string{},
		IpcMode:        container.IpcMode(s.Ipc),
		PidMode:        container.PidMode(s.Pid),
	}
	hc.CgroupParent = s.CgroupParent
	hc.Memory = int64(s.MemLimit)
	hc.NanoCPUs = int64(s.CPUS * 1e9)
	if s.PidsLimit != 0 {
		pl := s.PidsLimit
		hc.PidsLimit = &pl
	}
	if s.Deploy != nil {
		if l := s.Deploy.Resources.Limits; l != nil {
			if l.MemoryBytes != 0 {
				hc.Memory = int64(l.MemoryBytes)
			}
			if l.NanoCPUs != 0 {
				hc.NanoCPUs = int64(float64(l.NanoCPUs) * 1e9)
			}
			if l.Pids != 0 {
				pl := l.Pids
				hc.PidsLimit = &pl
			}
		}
		if r := s.Deploy.Resources.Reservations; r != nil && r.MemoryBytes != 0 {
			hc.MemoryReservation = int64(r.MemoryBytes)
		}
	}
	for _, t := range s.Tmpfs {
		path, opts, _ := strings.Cut(t, ":")
		hc.Tmpfs[path] = opts
	}
	for _, e := range s.Expose {
		port, err := network.ParsePort(e)
		if err != nil {
			return client.ContainerCreateOptions{}, fmt.Errorf("service %s: expose %q: %w", s.Name, e, err)
		}
		cfg.ExposedPorts[port] = struct{}{}
	}
	for _, pc := range s.Ports {
		proto := pc.Protocol
		if proto == "" {
			proto = "tcp"
		}
		port, err := network.ParsePort(fmt.Sprintf("%d/%s", pc.Target, proto))
		if err != nil {
			return client.ContainerCreateOptions{}, fmt.Errorf("service %s: port %d: %w", s.Name, pc.Target, err)
		}
		cfg.ExposedPorts[port] = struct{}{}
		b := network.PortBinding{HostPort: pc.Published}
		if pc.HostIP != "" {
			ip, err := netip.ParseAddr(pc.HostIP)
			if err != nil {
				return client.ContainerCreateOptions{}, fmt.Errorf("service %s: port host IP %q: %w", s.Name, pc.HostIP, err)
			}
			b.HostIP = ip
		}
		hc.PortBindings[port] = append(hc.PortBindings[port], b)
	}
	for _, v := range s.Volumes {
		switch v.Type {
		case types.VolumeTypeVolume:
			src := v.Source
			if src == "" {
				// anonymous volume: the daemon creates it
				cfg.Volumes = map[string]struct{}{v.Target: {}}
				continue
			}
			if vol, ok := p.Volumes[src]; ok {
				src = vol.Name
			}
			hc.Binds = append(hc.Binds, bindSpec(src, v))
		case types.VolumeTypeBind:
			hc.Binds = append(hc.Binds, bindSpec(v.Source, v))
		case types.VolumeTypeTmpfs:
			opts := ""
			if v.Tmpfs != nil && v.Tmpfs.Size != 0 {
				opts = fmt.Sprintf("size=%d", int64(v.Tmpfs.Size))
			}
			hc.Tmpfs[v.Target] = opts
		default:
			return client.ContainerCreateOptions{}, fmt.Errorf("service %s: volume type %q is not supported", s.Name, v.Type)
		}
	}

	for _, sec := range s.Secrets {
		bind, err := fileObjectBind(p, "secret", sec.Source, sec.Target, true)
		if err != nil {
			return client.ContainerCreateOptions{}, fmt.Errorf("service %s: %w", s.Name, err)
		}
		hc.Binds = append(hc.Binds, bind)
	}
	for _, cfgRef := range s.Configs {
		bind, err := fileObjectBind(p, "config", cfgRef.Source, cfgRef.Target, false)
		if err != nil {
			return client.ContainerCreateOptions{}, fmt.Errorf("service %s: %w", s.Name, err)
		}
		hc.Binds = append(hc.Binds, bind)
	}
	for name, u := range s.Ulimits {
		soft, hard := int64(u.Soft), int64(u.Hard)
		if u.Single != 0 {
			soft, hard = int64(u.Single), int64(u.Single)
		}
		hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: name, Soft: soft, Hard: hard})
	}
	slices.SortFunc(hc.Ulimits, func(a, b *container.Ulimit) int { return strings.Compare(a.Name, b.Name) })

	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	switch {
	case s.NetworkMode != "":
		hc.NetworkMode = container.NetworkMode(s.NetworkMode)
	default:
		for i, key := range sortedNetworks(s) {
			net, ok := p.Networks[key]
			if !ok {
				return client.ContainerCreateOptions{}, fmt.Errorf("service %s refers to undefined network %s", s.Name, key)
			}
			ep := &network.EndpointSettings{}
			if !oneoff {
				ep.Aliases = []string{s.Name}
			}
			if sn := s.Networks[key]; sn != nil {
				ep.Aliases = append(ep.Aliases, sn.Aliases...)
				if sn.Ipv4Address != "" {
					ip, err := netip.ParseAddr(sn.Ipv4Address)
					if err != nil {
						return client.ContainerCreateOptions{}, fmt.Errorf("service %s: ipv4_address: %w", s.Name, err)
					}
					ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
				}
			}
			if i == 0 {
				hc.NetworkMode = container.NetworkMode(net.Name)
			}
			nc.EndpointsConfig[net.Name] = ep
		}
	}

	name := containerName(p, s, n)
	return client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc, NetworkingConfig: nc}, nil
}

// sortedNetworks orders a service's networks by priority, then name, so
// the first (the container's primary network) is stable.
func sortedNetworks(s types.ServiceConfig) []string {
	keys := make([]string, 0, len(s.Networks))
	for k := range s.Networks {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		pa, pb := 0, 0
		if n := s.Networks[a]; n != nil {
			pa = n.Priority
		}
		if n := s.Networks[b]; n != nil {
			pb = n.Priority
		}
		if pa != pb {
			return pb - pa
		}
		return strings.Compare(a, b)
	})
	return keys
}

func bindSpec(src string, v types.ServiceVolumeConfig) string {
	spec := src + ":" + v.Target
	var opts []string
	if v.ReadOnly {
		opts = append(opts, "ro")
	}
	if v.Bind != nil {
		if v.Bind.Propagation != "" {
			opts = append(opts, v.Bind.Propagation)
		}
		if v.Bind.SELinux != "" {
			opts = append(opts, v.Bind.SELinux)
		}
	}
	if v.Volume != nil && v.Volume.NoCopy {
		opts = append(opts, "nocopy")
	}
	if len(opts) > 0 {
		spec += ":" + strings.Join(opts, ",")
	}
	return spec
}

func environ(m types.MappingWithEquals) []string {
	var env []string
	for k, v := range m {
		if v == nil {
			continue
		}
		env = append(env, k+"="+*v)
	}
	slices.Sort(env)
	return env
}

func dnsAddrs(l types.StringList) []netip.Addr {
	var out []netip.Addr
	for _, s := range l {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

func restartPolicy(s types.ServiceConfig) container.RestartPolicy {
	if s.Restart != "" {
		name, count, _ := strings.Cut(s.Restart, ":")
		n, _ := strconv.Atoi(count)
		return container.RestartPolicy{Name: container.RestartPolicyMode(name), MaximumRetryCount: n}
	}
	if s.Deploy != nil && s.Deploy.RestartPolicy != nil {
		rp := s.Deploy.RestartPolicy
		var p container.RestartPolicy
		switch rp.Condition {
		case "on-failure":
			p.Name = container.RestartPolicyOnFailure
		case "any":
			p.Name = container.RestartPolicyAlways
		default:
			p.Name = container.RestartPolicyDisabled
		}
		if rp.MaxAttempts != nil {
			p.MaximumRetryCount = int(*rp.MaxAttempts)
		}
		return p
	}
	return container.RestartPolicy{}
}

// fileObjectBind mounts a file-backed secret (at /run/secrets/<target>) or
// config (at its target, default /<source>) read-only, as docker compose
// does without swarm. Content- and environment-backed ones would need a copy
// into the container after create, which compose does not do yet.
func fileObjectBind(p *types.Project, kind, source, target string, secret bool) (string, error) {
	var obj types.FileObjectConfig
	var ok bool
	if secret {
		var sc types.SecretConfig
		sc, ok = p.Secrets[source]
		obj = types.FileObjectConfig(sc)
	} else {
		var cc types.ConfigObjConfig
		cc, ok = p.Configs[source]
		obj = types.FileObjectConfig(cc)
	}
	if !ok {
		return "", fmt.Errorf("%s %q is not defined", kind, source)
	}
	if obj.File == "" {
		return "", fmt.Errorf("%s %q: only file-backed %ss are supported", kind, source, kind)
	}
	if target == "" {
		target = source
	}
	if secret && !strings.HasPrefix(target, "/") {
		target = "/run/secrets/" + target
	} else if !strings.HasPrefix(target, "/") {
		target = "/" + target
	}
	return obj.File + ":" + target + ":ro", nil
}
