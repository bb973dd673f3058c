package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/network/portspec"
	"github.com/moby/moby/api/types/container"
	apinet "github.com/moby/moby/api/types/network"
)

// netService is the daemon's networking: the network manager plus each
// container's requested endpoints (persisted in <container-dir>/networks.json).
type netService struct {
	m *network.Manager

	mu sync.Mutex
	// plumbing holds the pending kernel setup of containers being started.
	plumbing map[string]chan error
	// endpoints caches the containers' endpoint configs.
	endpoints map[string]map[string]*apinet.EndpointSettings
}

const endpointsFile = "networks.json"

// openNetworking starts the network manager; sandboxes of containers that
// are no longer running (per their records) are removed.
func (d *Daemon) openNetworking(ctx context.Context) error {
	cidr := network.DefaultCIDR
	if d.cfg.BridgeIP != "" {
		p, err := netip.ParsePrefix(d.cfg.BridgeIP)
		if err != nil || !p.Addr().Is4() {
			return fmt.Errorf("daemon: invalid --bip %q: want an IPv4 address with its prefix, e.g. 172.29.0.1/16", d.cfg.BridgeIP)
		}
		cidr = p
	}
	table := d.cfg.NetworkTable
	if table == "" && filepath.Clean(d.cfg.ExecRoot) != "/run/berth" {
		// A second daemon (its own exec root) gets a table of its own,
		// the same one again after a crash.
		sum := sha256.Sum256([]byte(filepath.Clean(d.cfg.ExecRoot)))
		table = "berth-" + hex.EncodeToString(sum[:4])
	}
	m, err := network.Open(ctx, network.Config{
		DataDir:       filepath.Join(d.cfg.DataRoot, "network"),
		ExecDir:       filepath.Join(d.cfg.ExecRoot, "network"),
		DefaultBridge: d.cfg.Bridge,
		DefaultCIDR:   cidr,
		Table:         table,
		Log:           d.log.With("component", "network"),
	}, func(id string) bool {
		c, err := loadContainer(filepath.Join(d.cfg.containersDir(), id))
		return err == nil && c.State.running()
	})
	if err != nil {
		return fmt.Errorf("daemon: networking: %w", err)
	}
	d.net = &netService{m: m, plumbing: map[string]chan error{}, endpoints: map[string]map[string]*apinet.EndpointSettings{}}
	return nil
}

func (d *Daemon) closeNetworking() {
	if d.net != nil {
		d.net.m.Close()
	}
}

// networkMode normalises a container's network mode: "" and "default" are
// the default bridge.
func networkMode(hc *container.HostConfig) string {
	switch nm := string(hc.NetworkMode); nm {
	case "", apinet.NetworkDefault:
		return apinet.NetworkBridge
	default:
		return nm
	}
}

func isContainerMode(nm string) (string, bool) { return strings.CutPrefix(nm, "container:") }

// usesSandbox reports whether the container gets its own namespace with
// endpoints (bridge and user networks).
func usesSandbox(nm string) bool {
	_, cm := isContainerMode(nm)
	return nm != "host" && nm != "none" && !cm
}

// netValidate checks a create request's networking and returns the
// endpoint configs to record.
func (d *Daemon) netValidate(hc *container.HostConfig, nc *apinet.NetworkingConfig) (map[string]*apinet.EndpointSettings, error) {
	nm := networkMode(hc)
	eps := map[string]*apinet.EndpointSettings{}
	if target, ok := isContainerMode(nm); ok {
		if _, err := d.containers.get(target); err != nil {
			return nil, err
		}
		if len(hc.PortBindings) > 0 || hc.PublishAllPorts {
			return nil, errdefs.InvalidParameterf("conflicting options: port publishing and the container type network mode")
		}
		return eps, nil
	}
	if nm == "host" || nm == "none" {
		if len(hc.PortBindings) > 0 && nm == "none" {
			return nil, errdefs.InvalidParameterf("conflicting options: port publishing and the container type network mode")
		}
		return eps, nil
	}
	if _, err := d.net.m.Network(nm); err != nil {
		return nil, err
	}
	if nc != nil {
		for name, es := range nc.EndpointsConfig {
			if name == string(hc.NetworkMode) || name == nm {
				name = nm
			} else if _, err := d.net.m.Network(name); err != nil {
				return nil, err
			}
			if es == nil {
				es = &apinet.EndpointSettings{}
			}
			eps[name] = es.Copy()
		}
	}
	if eps[nm] == nil {
		eps[nm] = &apinet.EndpointSettings{}
	}
	for p, bs := range hc.PortBindings {
		for _, b := range bs {
			if _, _, err := parseHostPortRange(b.HostPort); err != nil {
				return nil, errdefs.InvalidParameterf("invalid port specification: %q", b.HostPort)
			}
		}
		if !p.IsValid() {
			return nil, errdefs.InvalidParameterf("invalid port %q", p.String())
		}
	}
	return eps, nil
}

func parseHostPortRange(s string) (int, int, error) {
	lo, hi, err := portspec.HostPorts(s)
	return int(lo), int(hi), err
}

// netSaveEndpoints records a new container's endpoint configs.
func (d *Daemon) netSaveEndpoints(c *Container, eps map[string]*apinet.EndpointSettings) error {
	d.net.mu.Lock()
	defer d.net.mu.Unlock()
	d.net.endpoints[c.ID] = eps
	return writeJSONFile(filepath.Join(c.dir, endpointsFile), eps)
}

// endpointConfigs returns a container's endpoint configs by network name.
func (d *Daemon) endpointConfigs(c *Container) map[string]*apinet.EndpointSettings {
	d.net.mu.Lock()
	defer d.net.mu.Unlock()
	if eps, ok := d.net.endpoints[c.ID]; ok {
		return eps
	}
	eps := map[string]*apinet.EndpointSettings{}
	if err := readJSONFile(filepath.Join(c.dir, endpointsFile), &eps); err != nil {
		nm := networkMode(c.HostConfig)
		if usesSandbox(nm) || nm == "host" || nm == "none" {
			eps = map[string]*apinet.EndpointSettings{nm: {}}
		}
	}
	d.net.endpoints[c.ID] = eps
	return eps
}

// sortedNetworks lists a container's networks, its primary one first.
func (d *Daemon) sortedNetworks(c *Container, eps map[string]*apinet.EndpointSettings) []string {
	primary := networkMode(c.HostConfig)
	names := make([]string, 0, len(eps))
	for n := range eps {
		if n != primary {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if _, ok := eps[primary]; ok {
		names = append([]string{primary}, names...)
	}
	return names
}

// netPrepare allocates a starting container's addresses and ports and
// starts its kernel setup in the background; the returned wait ends it.
// Caller holds c.mu.
func (d *Daemon) netPrepare(c *Container) (func() error, error) {
	nm := networkMode(c.HostConfig)
	if !usesSandbox(nm) {
		return func() error { return nil }, nil
	}
	eps := d.endpointConfigs(c)
	req := network.SandboxRequest{ContainerID: c.ID, Name: trimSlash(c.Name), Hostname: c.Config.Hostname, Ports: d.portRequests(c)}
	for _, name := range d.sortedNetworks(c, eps) {
		es := eps[name]
		er := network.EndpointRequest{Network: name, Aliases: es.Aliases}
		if es.IPAMConfig != nil {
			er.IPv4 = es.IPAMConfig.IPv4Address
		}
		if len(es.MacAddress) > 0 {
			er.MAC = net.HardwareAddr(es.MacAddress)
		}
		req.Endpoints = append(req.Endpoints, er)
	}
	if _, err := d.net.m.Create(req); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	d.net.mu.Lock()
	d.net.plumbing[c.ID] = done
	d.net.mu.Unlock()
	go func() { done <- d.net.m.Plumb(c.ID) }()
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			err = <-done
			d.net.mu.Lock()
			delete(d.net.plumbing, c.ID)
			d.net.mu.Unlock()
		})
		return err
	}, nil
}

// portRequests merges PortBindings with -P's exposed ports.
func (d *Daemon) portRequests(c *Container) apinet.PortMap {
	pm := apinet.PortMap{}
	for p, bs := range c.HostConfig.PortBindings {
		if len(bs) == 0 {
			bs = []apinet.PortBinding{{}}
		}
		pm[p] = bs
	}
	if c.HostConfig.PublishAllPorts {
		for p := range c.Config.ExposedPorts {
			if _, ok := pm[p]; !ok {
				pm[p] = []apinet.PortBinding{{}}
			}
		}
	}
	return pm
}

// netRelease frees a container's networking after its run.
func (d *Daemon) netRelease(c *Container) {
	d.net.mu.Lock()
	pending := d.net.plumbing[c.ID]
	delete(d.net.plumbing, c.ID)
	delete(d.net.endpoints, c.ID) // reloaded from the container's dir when needed
	d.net.mu.Unlock()
	if pending != nil {
		if err := <-pending; err != nil {
			d.log.Debug("network setup of a failed start", "id", c.ID, "err", err)
		}
	}
	d.net.m.Release(c.ID)
}

// netnsMode is the spec's network mode for c: a namespace path, host or none.
func (d *Daemon) netnsMode(c *Container) string {
	nm := networkMode(c.HostConfig)
	if target, ok := isContainerMode(nm); ok {
		t, err := d.containers.get(target)
		if err != nil {
			return "none"
		}
		if sb, ok := d.net.m.Sandbox(t.ID); ok {
			return sb.NetnsPath
		}
		t.mu.Lock()
		pid, tnm := t.State.Pid, networkMode(t.HostConfig)
		t.mu.Unlock()
		if tnm == "host" {
			return "host"
		}
		if pid > 0 {
			return fmt.Sprintf("/proc/%d/ns/net", pid)
		}
		return "none"
	}
	if usesSandbox(nm) {
		return d.net.m.NetnsPath(c.ID)
	}
	return "none"
}

// netHosts adds the container's own addresses to its /etc/hosts.
func (d *Daemon) netHosts(c *Container, hosts *strings.Builder) {
	sb, ok := d.net.m.Sandbox(c.ID)
	if !ok {
		return
	}
	for _, ep := range sb.Endpoints {
		fmt.Fprintf(hosts, "%s\t%s\n", ep.Addr, c.Config.Hostname)
	}
}

// netDNS returns the nameservers for the container's resolv.conf: --dns,
// else the embedded DNS of its first user network, else none (the host's).
func (d *Daemon) netDNS(c *Container) []netip.Addr {
	if len(c.HostConfig.DNS) > 0 {
		return c.HostConfig.DNS
	}
	nm := networkMode(c.HostConfig)
	if !usesSandbox(nm) {
		return nil
	}
	if gw, ok := d.net.m.DNSServer(nm); ok {
		return []netip.Addr{gw}
	}
	return nil
}

// netSettings builds inspect's NetworkSettings. Caller holds c.mu.
func (d *Daemon) netSettings(c *Container) *container.NetworkSettings {
	ns := &container.NetworkSettings{Ports: apinet.PortMap{}, Networks: map[string]*apinet.EndpointSettings{}}
	sb, running := d.net.m.Sandbox(c.ID)
	if running {
		ns.SandboxID = c.ID
		ns.SandboxKey = sb.NetnsPath
	}
	for p := range c.Config.ExposedPorts {
		ns.Ports[p] = nil
	}
	for p := range c.HostConfig.PortBindings {
		ns.Ports[p] = nil
	}
	if running {
		for _, pm := range sb.Ports {
			p, _ := apinet.PortFrom(pm.CtrPort, apinet.IPProtocol(pm.Proto))
			ip := pm.HostIP
			if !ip.IsValid() {
				ip = netip.IPv4Unspecified()
			}
			ns.Ports[p] = append(ns.Ports[p], apinet.PortBinding{HostIP: ip, HostPort: fmt.Sprint(pm.HostPort)})
		}
	}
	eps := d.endpointConfigs(c)
	for name, cfg := range eps {
		es := cfg.Copy()
		if es == nil {
			es = &apinet.EndpointSettings{}
		}
		if n, err := d.net.m.Network(name); err == nil {
			es.NetworkID = n.ID
			if running {
				if ep := sb.Endpoint(n.ID); ep != nil {
					es.EndpointID = ep.EndpointID
					es.Gateway = n.Gateway
					es.IPAddress = ep.Addr
					es.IPPrefixLen = n.Subnet.Bits()
					es.MacAddress = apinet.HardwareAddr(ep.MAC)
					es.DNSNames = ep.DNSNames
				}
			}
		}
		ns.Networks[name] = es
	}
	return ns
}

// netSummary gives ps its Ports and networks. Caller holds c.mu.
func (d *Daemon) netSummary(c *Container) ([]container.PortSummary, *container.NetworkSettingsSummary) {
	ns := d.netSettings(c)
	ports := []container.PortSummary{}
	for p, bs := range ns.Ports {
		if len(bs) == 0 {
			ports = append(ports, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
			continue
		}
		for _, b := range bs {
			var hp uint16
			fmt.Sscan(b.HostPort, &hp)
			ports = append(ports, container.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: hp, Type: string(p.Proto())})
		}
	}
	sort.Slice(ports, func(i, j int) bool {
		if ports[i].PrivatePort != ports[j].PrivatePort {
			return ports[i].PrivatePort < ports[j].PrivatePort
		}
		return ports[i].PublicPort < ports[j].PublicPort
	})
	return ports, &container.NetworkSettingsSummary{Networks: ns.Networks}
}

func writeJSONFile(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readJSONFile(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
