package compose

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
)

// createRequest turns a service into the Engine API's create request for
// its n-th container.
func createRequest(p *types.Project, s types.ServiceConfig, n int, hash string) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	labels := projectLabels(p)
	for k, v := range s.Labels {
		labels[k] = v
	}
	labels[LabelService] = s.Name
	labels[LabelNumber] = strconv.Itoa(n)
	labels[LabelConfigHash] = hash
	labels[LabelOneoff] = "False"
	labels[LabelImage] = imageName(p, s)
	var deps []string
	for d, dep := range s.DependsOn {
		deps = append(deps, fmt.Sprintf("%s:%s:%v", d, dep.Condition, dep.Restart))
	}
	sort.Strings(deps)
	labels[LabelDependsOn] = strings.Join(deps, ",")

	var env []string
	for k, v := range s.Environment {
		if v == nil {
			continue
		}
		env = append(env, k+"="+*v)
	}
	sort.Strings(env)
	cfg := &container.Config{
		Image:        imageName(p, s),
		Cmd:          s.Command,
		Entrypoint:   s.Entrypoint,
		Env:          env,
		Labels:       labels,
		WorkingDir:   s.WorkingDir,
		User:         s.User,
		Hostname:     s.Hostname,
		Domainname:   s.DomainName,
		Tty:          s.Tty,
		OpenStdin:    s.StdinOpen,
		StopSignal:   s.StopSignal,
		ExposedPorts: network.PortSet{},
	}
	if s.StopGracePeriod != nil {
		t := int(time.Duration(*s.StopGracePeriod).Seconds())
		cfg.StopTimeout = &t
	}
	if hc := s.HealthCheck; hc != nil {
		h := &container.HealthConfig{Test: hc.Test}
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
	for _, e := range s.Expose {
		port, proto, _ := strings.Cut(e, "/")
		if proto == "" {
			proto = "tcp"
		}
		pp, err := network.ParsePort(port + "/" + proto)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("service %s: expose %q: %w", s.Name, e, err)
		}
		cfg.ExposedPorts[pp] = struct{}{}
	}

	hc := &container.HostConfig{
		PortBindings:   network.PortMap{},
		CapAdd:         s.CapAdd,
		CapDrop:        s.CapDrop,
		Privileged:     s.Privileged,
		ReadonlyRootfs: s.ReadOnly,
		DNS:            addrs(s.DNS),
		DNSSearch:      s.DNSSearch,
		DNSOptions:     s.DNSOpts,
		GroupAdd:       s.GroupAdd,
		SecurityOpt:    s.SecurityOpt,
		Init:           s.Init,
		Sysctls:        s.Sysctls,
		ShmSize:        int64(s.ShmSize),
		OomScoreAdj:    int(s.OomScoreAdj),
		VolumesFrom:    s.VolumesFrom,
		Runtime:        s.Runtime,
		IpcMode:        container.IpcMode(s.Ipc),
		PidMode:        container.PidMode(s.Pid),
		UTSMode:        container.UTSMode(s.Uts),
	}
	for _, h := range s.ExtraHosts.AsList(":") {
		hc.ExtraHosts = append(hc.ExtraHosts, h)
	}
	if s.Restart != "" {
		name, count, _ := strings.Cut(s.Restart, ":")
		hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyMode(name)}
		if count != "" {
			hc.RestartPolicy.MaximumRetryCount, _ = strconv.Atoi(count)
		}
	}
	hc.Memory = int64(s.MemLimit)
	hc.PidsLimit = nilIfZero(s.PidsLimit)
	if s.CPUS > 0 {
		hc.NanoCPUs = int64(s.CPUS * 1e9)
	}
	hc.CPUShares = s.CPUShares
	hc.CpusetCpus = s.CPUSet
	if d := s.Deploy; d != nil && d.Resources.Limits != nil {
		l := d.Resources.Limits
		if l.MemoryBytes > 0 {
			hc.Memory = int64(l.MemoryBytes)
		}
		if l.NanoCPUs > 0 {
			hc.NanoCPUs = int64(float64(l.NanoCPUs) * 1e9)
		}
		if l.Pids > 0 {
			hc.PidsLimit = &l.Pids
		}
	}
	for _, u := range sortedUlimits(s.Ulimits) {
		hc.Ulimits = append(hc.Ulimits, u)
	}
	if len(s.Tmpfs) > 0 {
		hc.Tmpfs = map[string]string{}
		for _, t := range s.Tmpfs {
			path, opts, _ := strings.Cut(t, ":")
			hc.Tmpfs[path] = opts
		}
	}
	for _, port := range s.Ports {
		pp, err := network.ParsePort(fmt.Sprintf("%d/%s", port.Target, protoOr(port.Protocol)))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("service %s: port %d: %w", s.Name, port.Target, err)
		}
		cfg.ExposedPorts[pp] = struct{}{}
		b := network.PortBinding{HostPort: port.Published}
		if port.HostIP != "" {
			ip, err := netip.ParseAddr(port.HostIP)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("service %s: port host_ip %q: %w", s.Name, port.HostIP, err)
			}
			b.HostIP = ip
		}
		hc.PortBindings[pp] = append(hc.PortBindings[pp], b)
	}
	for _, v := range s.Volumes {
		m := mount.Mount{Target: v.Target, ReadOnly: v.ReadOnly}
		switch v.Type {
		case types.VolumeTypeVolume:
			m.Type = mount.TypeVolume
			if v.Source != "" {
				m.Source = volumeName(p, v.Source)
			}
			m.VolumeOptions = &mount.VolumeOptions{Labels: map[string]string{LabelProject: p.Name, LabelVolume: v.Source}}
			if v.Volume != nil {
				m.VolumeOptions.NoCopy = v.Volume.NoCopy
				m.VolumeOptions.Subpath = v.Volume.Subpath
			}
		case types.VolumeTypeBind:
			// -v semantics: a missing host directory is created.
			mode := "rw"
			if v.ReadOnly {
				mode = "ro"
			}
			if v.Bind != nil && v.Bind.Propagation != "" {
				mode += "," + v.Bind.Propagation
			}
			hc.Binds = append(hc.Binds, v.Source+":"+v.Target+":"+mode)
			continue
		case types.VolumeTypeTmpfs:
			m.Type = mount.TypeTmpfs
			if v.Tmpfs != nil {
				m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: int64(v.Tmpfs.Size), Mode: 0}
			}
		default:
			return nil, nil, nil, fmt.Errorf("service %s: volume type %q is not supported", s.Name, v.Type)
		}
		hc.Mounts = append(hc.Mounts, m)
	}

	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	switch {
	case s.NetworkMode != "":
		hc.NetworkMode = container.NetworkMode(s.NetworkMode)
	default:
		keys := make([]string, 0, len(s.Networks))
		for k := range s.Networks {
			keys = append(keys, k)
		}
		if len(keys) == 0 {
			keys = []string{"default"}
		}
		sort.Strings(keys)
		for i, k := range keys {
			ep := &network.EndpointSettings{Aliases: []string{s.Name}}
			if sn := s.Networks[k]; sn != nil {
				ep.Aliases = append(ep.Aliases, sn.Aliases...)
				if sn.Ipv4Address != "" {
					ip, err := netip.ParseAddr(sn.Ipv4Address)
					if err != nil {
						return nil, nil, nil, fmt.Errorf("service %s: ipv4_address: %w", s.Name, err)
					}
					ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
				}
			}
			name := networkName(p, k)
			if i == 0 {
				hc.NetworkMode = container.NetworkMode(name)
			}
			nc.EndpointsConfig[name] = ep
		}
	}
	return cfg, hc, nc, nil
}

func protoOr(p string) string {
	if p == "" {
		return "tcp"
	}
	return p
}

func nilIfZero(n int64) *int64 {
	if n == 0 {
		return nil
	}
	return &n
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

func sortedUlimits(m map[string]*types.UlimitsConfig) []*container.Ulimit {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []*container.Ulimit
	for _, n := range names {
		u := m[n]
		if u == nil {
			continue
		}
		soft, hard := int64(u.Soft), int64(u.Hard)
		if u.Single != 0 {
			soft, hard = int64(u.Single), int64(u.Single)
		}
		out = append(out, &container.Ulimit{Name: n, Soft: soft, Hard: hard})
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) { return netip.ParsePrefix(s) }
func parseAddr(s string) (netip.Addr, error)     { return netip.ParseAddr(s) }
