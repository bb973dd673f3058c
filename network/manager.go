package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
)

// Config is the manager's environment.
type Config struct {
	DataDir string // persistent: networks.json
	ExecDir string // runtime: netns/, sandboxes/
	// DefaultBridge and DefaultCIDR (the gateway with its prefix, --bip)
	// describe the default network.
	DefaultBridge string
	DefaultCIDR   netip.Prefix
	// Table is the nftables table (ip family) berth owns.
	Table string
	// NoDNS disables the embedded DNS servers (tests).
	NoDNS bool
	Log   *slog.Logger
}

// DefaultCIDR is the default bridge's gateway and subnet: clear of Docker's
// 172.17.0.0/16 so both engines can run side by side.
var DefaultCIDR = netip.MustParsePrefix("172.29.0.1/16")

// Manager owns the networks and the containers' sandboxes.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	nets      map[string]*Network // by ID
	pools     map[string]*pool
	sandboxes map[string]*Sandbox
	reserved  map[portKey]io.Closer
	dns       map[string]*dnsServer

	nftMu    sync.Mutex
	teardown sync.WaitGroup
}

type networksFile struct {
	Networks []*Network
}

// Open loads the networks and sandboxes, removes what a crashed daemon left
// (sandboxes of containers alive reports dead, stray namespaces, the old
// rule set) and brings bridges, rules and DNS servers up.
func Open(ctx context.Context, cfg Config, alive func(containerID string) bool) (*Manager, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.DefaultBridge == "" {
		cfg.DefaultBridge = "berth0"
	}
	if !cfg.DefaultCIDR.IsValid() {
		cfg.DefaultCIDR = DefaultCIDR
	}
	if cfg.Table == "" {
		cfg.Table = "berth"
	}
	for _, dir := range []string{cfg.DataDir, cfg.sandboxDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
	}
	if err := prepareNetnsDir(cfg.netnsDir()); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	m := &Manager{
		cfg: cfg, log: cfg.Log,
		nets: map[string]*Network{}, pools: map[string]*pool{}, sandboxes: map[string]*Sandbox{},
		reserved: map[portKey]io.Closer{}, dns: map[string]*dnsServer{},
	}
	var nf networksFile
	if err := readJSON(cfg.networksPath(), &nf); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("network: load networks: %w", err)
	}
	for _, n := range nf.Networks {
		if n.Default {
			// --bip and --bridge may have changed since.
			if n.Bridge != cfg.DefaultBridge {
				deleteLink(n.Bridge)
				disallowForward(n.Bridge)
			}
			n.Bridge, n.Gateway, n.Subnet, n.IPRange = cfg.DefaultBridge, cfg.DefaultCIDR.Addr(), cfg.DefaultCIDR.Masked(), netip.Prefix{}
		}
		m.nets[n.ID] = n
		m.pools[n.ID] = newPool(n.Subnet, n.IPRange, n.Gateway)
	}
	if m.defaultNetwork() == nil {
		if err := m.checkSubnetFree(cfg.DefaultCIDR.Masked(), cfg.DefaultBridge, ""); err != nil {
			return nil, fmt.Errorf("network: default bridge: %w", err)
		}
		n := &Network{ID: randomID(), Name: network.NetworkBridge, Created: time.Now().UTC(), Bridge: cfg.DefaultBridge,
			Subnet: cfg.DefaultCIDR.Masked(), Gateway: cfg.DefaultCIDR.Addr(), Default: true,
			Options: map[string]string{"com.docker.network.bridge.default_bridge": "true", "com.docker.network.bridge.enable_icc": "true",
				"com.docker.network.bridge.enable_ip_masquerade": "true", "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
				"com.docker.network.bridge.name": cfg.DefaultBridge, "com.docker.network.driver.mtu": "1500"}}
		m.nets[n.ID] = n
		m.pools[n.ID] = newPool(n.Subnet, n.IPRange, n.Gateway)
	}
	if err := m.saveNetworks(); err != nil {
		return nil, err
	}
	// Sandboxes: keep the live ones, tear down the rest.
	entries, _ := os.ReadDir(cfg.sandboxDir())
	pinned := map[string]bool{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		var sb Sandbox
		path := filepath.Join(cfg.sandboxDir(), e.Name())
		if err := readJSON(path, &sb); err != nil {
			os.Remove(path)
			continue
		}
		if alive == nil || !alive(sb.ContainerID) {
			m.log.Info("removing networking of a container gone while the daemon was away", "id", sb.ContainerID)
			m.destroy(&sb)
			os.Remove(path)
			continue
		}
		for _, ep := range sb.Endpoints {
			if p := m.pools[ep.NetworkID]; p != nil {
				p.mark(ep.Addr)
			}
		}
		for _, k := range keysOf(sb.Ports) {
			if c, _, err := reservePort(k.proto, k.ip, k.port); err == nil {
				m.reserved[k] = c
			} else {
				m.log.Warn("re-reserve published port", "port", k.port, "err", err)
				m.reserved[k] = io.NopCloser(nil)
			}
		}
		m.sandboxes[sb.ContainerID] = &sb
		pinned[sb.NetnsPath] = true
	}
	for _, p := range netnsFiles(cfg.netnsDir()) {
		if !pinned[p] {
			removeNetns(p)
		}
	}
	for _, n := range m.nets {
		if err := m.upNetwork(n); err != nil {
			return nil, err
		}
	}
	if err := m.syncRules(); err != nil {
		return nil, err
	}
	return m, nil
}

func (c Config) networksPath() string { return filepath.Join(c.DataDir, "networks.json") }
func (c Config) sandboxDir() string   { return filepath.Join(c.ExecDir, "sandboxes") }
func (c Config) netnsDir() string     { return filepath.Join(c.ExecDir, "netns") }

// NetnsPath is where a container's network namespace is pinned.
func (m *Manager) NetnsPath(containerID string) string {
	return filepath.Join(m.cfg.netnsDir(), containerID)
}

// Close stops the DNS servers and waits for teardowns. Bridges and rules
// stay for the containers that keep running; with none left the rule set
// is dropped, leaving the host's as it was.
func (m *Manager) Close() error {
	m.teardown.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.dns {
		s.close()
	}
	m.dns = map[string]*dnsServer{}
	for k, c := range m.reserved {
		c.Close()
		delete(m.reserved, k)
	}
	if len(m.sandboxes) == 0 {
		dropTable(m.cfg.Table)
		for _, n := range m.nets {
			disallowForward(n.Bridge)
		}
		unmountNetnsDir(m.cfg.netnsDir())
	}
	return nil
}

func (m *Manager) saveNetworks() error {
	nf := networksFile{}
	for _, n := range m.nets {
		nf.Networks = append(nf.Networks, n)
	}
	sort.Slice(nf.Networks, func(i, j int) bool { return nf.Networks[i].Created.Before(nf.Networks[j].Created) })
	if err := writeJSON(m.cfg.networksPath(), nf, true); err != nil {
		return fmt.Errorf("network: save networks: %w", err)
	}
	return nil
}

func (m *Manager) defaultNetwork() *Network {
	for _, n := range m.nets {
		if n.Default {
			return n
		}
	}
	return nil
}

// upNetwork brings a network's bridge, forwarding and DNS up. Caller holds m.mu or is Open.
func (m *Manager) upNetwork(n *Network) error {
	if err := ensureBridge(n.Bridge, netip.PrefixFrom(n.Gateway, n.Subnet.Bits())); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	if err := allowForward(n.Bridge); err != nil {
		m.log.Warn("allow forwarding in iptables FORWARD", "bridge", n.Bridge, "err", err)
	}
	if !n.Default && !m.cfg.NoDNS && m.dns[n.ID] == nil {
		s, err := m.startDNS(n)
		if err != nil {
			m.log.Warn("embedded DNS", "network", n.Name, "err", err)
		} else {
			m.dns[n.ID] = s
		}
	}
	return nil
}

// syncRules rebuilds berth's nftables table from the current state.
func (m *Manager) syncRules() error {
	m.nftMu.Lock()
	defer m.nftMu.Unlock()
	m.mu.Lock()
	nets := make([]*Network, 0, len(m.nets))
	for _, n := range m.nets {
		nets = append(nets, n)
	}
	sort.Slice(nets, func(i, j int) bool { return nets[i].Bridge < nets[j].Bridge })
	var ports []PortMapping
	for _, sb := range m.sandboxes {
		ports = append(ports, sb.Ports...)
	}
	m.mu.Unlock()
	return applyRuleset(m.cfg.Table, ruleset(nets, ports))
}

// checkSubnetFree refuses a subnet overlapping another network's or a
// host route (other than through bridge itself). Caller holds m.mu.
func (m *Manager) checkSubnetFree(subnet netip.Prefix, bridge, exceptID string) error {
	for _, n := range m.nets {
		if n.ID != exceptID && overlaps(n.Subnet, subnet) {
			return errdefs.Forbidden(fmt.Errorf("Pool overlaps with other one on this address space"))
		}
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().Name == bridge {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, _ := netip.AddrFromSlice(r.Dst.IP)
		if ones > 0 && overlaps(netip.PrefixFrom(a.Unmap(), ones), subnet) {
			return errdefs.Forbidden(fmt.Errorf("subnet %s overlaps with the host route to %s", subnet, r.Dst))
		}
	}
	return nil
}

// CreateRequest describes a user-defined network.
type CreateRequest struct {
	Name     string
	Subnet   netip.Prefix
	Gateway  netip.Addr
	IPRange  netip.Prefix
	Internal bool
	IPv6     bool
	Labels   map[string]string
	Options  map[string]string
}

// candidate pools for networks created without a subnet.
var autoPools = func() []netip.Prefix {
	var out []netip.Prefix
	for i := 30; i <= 31; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i < 256; i += 16 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	for i := 64; i < 128; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16))
	}
	return out
}()

// CreateNetwork creates a bridge network.
func (m *Manager) CreateNetwork(req CreateRequest) (*Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if req.Name == "" {
		return nil, errdefs.InvalidParameterf("network name cannot be empty")
	}
	if _, err := m.find(req.Name); err == nil || isPredefined(req.Name) {
		return nil, errdefs.Conflictf("network with name %s already exists", req.Name)
	}
	id := randomID()
	bridge := "bn-" + id[:12]
	if b := req.Options["com.docker.network.bridge.name"]; b != "" {
		if len(b) > 15 {
			return nil, errdefs.InvalidParameterf("bridge name %q is longer than 15 characters", b)
		}
		bridge = b
	}
	n := &Network{ID: id, Name: req.Name, Created: time.Now().UTC(), Bridge: bridge, Internal: req.Internal,
		Labels: req.Labels, Options: req.Options, EnableIPv6: req.IPv6}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if n.Options == nil {
		n.Options = map[string]string{}
	}
	if req.Subnet.IsValid() {
		if !req.Subnet.Addr().Is4() {
			return nil, errdefs.InvalidParameterf("IPv6 subnets are not supported yet: %s", req.Subnet)
		}
		if req.Subnet.Bits() > 30 {
			return nil, errdefs.InvalidParameterf("subnet %s is too small", req.Subnet)
		}
		if err := m.checkSubnetFree(req.Subnet.Masked(), bridge, ""); err != nil {
			return nil, err
		}
		n.Subnet, n.UserSubnet = req.Subnet.Masked(), true
	} else {
		for _, p := range autoPools {
			if m.checkSubnetFree(p, bridge, "") == nil {
				n.Subnet = p
				break
			}
		}
		if !n.Subnet.IsValid() {
			return nil, errdefs.Forbidden(errors.New("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"))
		}
	}
	n.Gateway = n.Subnet.Addr().Next()
	if req.Gateway.IsValid() {
		if !n.Subnet.Contains(req.Gateway) {
			return nil, errdefs.InvalidParameterf("gateway %s does not belong to subnet %s", req.Gateway, n.Subnet)
		}
		n.Gateway = req.Gateway
	}
	if req.IPRange.IsValid() {
		if !n.Subnet.Contains(req.IPRange.Addr()) || req.IPRange.Bits() < n.Subnet.Bits() {
			return nil, errdefs.InvalidParameterf("ip-range %s is not inside subnet %s", req.IPRange, n.Subnet)
		}
		n.IPRange = req.IPRange.Masked()
	}
	m.nets[n.ID] = n
	m.pools[n.ID] = newPool(n.Subnet, n.IPRange, n.Gateway)
	if err := m.upNetwork(n); err != nil {
		m.removeNetworkLocked(n)
		return nil, err
	}
	if err := m.saveNetworks(); err != nil {
		m.removeNetworkLocked(n)
		return nil, err
	}
	m.mu.Unlock()
	err := m.syncRules()
	m.mu.Lock()
	if err != nil {
		m.removeNetworkLocked(n)
		return nil, err
	}
	cp := *n
	return &cp, nil
}

func isPredefined(name string) bool {
	return name == network.NetworkBridge || name == network.NetworkHost || name == network.NetworkNone || name == network.NetworkDefault
}

// find resolves a network by full ID, name or ID prefix. Caller holds m.mu.
func (m *Manager) find(ref string) (*Network, error) {
	if ref == network.NetworkDefault {
		ref = network.NetworkBridge
	}
	if n := m.nets[ref]; n != nil {
		return n, nil
	}
	for _, n := range m.nets {
		if n.Name == ref {
			return n, nil
		}
	}
	var found *Network
	for _, n := range m.nets {
		if ref != "" && strings.HasPrefix(n.ID, ref) {
			if found != nil {
				return nil, errdefs.InvalidParameterf("network %s is ambiguous", ref)
			}
			found = n
		}
	}
	if found == nil {
		return nil, errdefs.NotFoundf("network %s not found", ref)
	}
	return found, nil
}

// Network returns a copy of a network.
func (m *Manager) Network(ref string) (*Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.find(ref)
	if err != nil {
		return nil, err
	}
	cp := *n
	return &cp, nil
}

// Networks returns copies of all networks, oldest first.
func (m *Manager) Networks() []*Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Network, 0, len(m.nets))
	for _, n := range m.nets {
		cp := *n
		out = append(out, &cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// RemoveNetwork deletes a user network with no endpoints; inUse reports
// whether any container (running or not) refers to it.
func (m *Manager) RemoveNetwork(ref string, inUse func(n *Network) bool) error {
	m.mu.Lock()
	n, err := m.find(ref)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	if n.Default {
		m.mu.Unlock()
		return errdefs.Forbidden(fmt.Errorf("%s is a pre-defined network and cannot be removed", n.Name))
	}
	for _, sb := range m.sandboxes {
		if sb.Endpoint(n.ID) != nil {
			m.mu.Unlock()
			return errdefs.Forbidden(fmt.Errorf("error while removing network: network %s id %s has active endpoints", n.Name, n.ID))
		}
	}
	if inUse != nil && inUse(n) {
		m.mu.Unlock()
		return errdefs.Forbidden(fmt.Errorf("error while removing network: network %s id %s has active endpoints", n.Name, n.ID))
	}
	m.removeNetworkLocked(n)
	err = m.saveNetworks()
	m.mu.Unlock()
	if serr := m.syncRules(); err == nil {
		err = serr
	}
	return err
}

func (m *Manager) removeNetworkLocked(n *Network) {
	if s := m.dns[n.ID]; s != nil {
		s.close()
		delete(m.dns, n.ID)
	}
	delete(m.nets, n.ID)
	delete(m.pools, n.ID)
	deleteLink(n.Bridge)
	disallowForward(n.Bridge)
}

// EndpointRequest asks for a container's attachment to a network.
type EndpointRequest struct {
	Network string
	Aliases []string
	IPv4    netip.Addr
	MAC     net.HardwareAddr
}

// SandboxRequest asks for a container's networking.
type SandboxRequest struct {
	ContainerID string
	Name        string
	Hostname    string
	Endpoints   []EndpointRequest
	Ports       network.PortMap
}

// Create allocates a container's addresses and host ports and records the
// sandbox; Plumb then does the kernel work. Fast: it runs before the
// container's bundle is written (which needs the addresses).
func (m *Manager) Create(req SandboxRequest) (*Sandbox, error) {
	m.Release(req.ContainerID)
	m.mu.Lock()
	defer m.mu.Unlock()
	sb := &Sandbox{ContainerID: req.ContainerID, Name: req.Name, Hostname: req.Hostname, NetnsPath: m.NetnsPath(req.ContainerID)}
	undo := func() {
		for _, ep := range sb.Endpoints {
			m.pools[ep.NetworkID].release(ep.Addr)
		}
	}
	for i, er := range req.Endpoints {
		ep, err := m.newEndpoint(sb, er, i)
		if err != nil {
			undo()
			return nil, err
		}
		sb.Endpoints = append(sb.Endpoints, ep)
	}
	if len(req.Ports) > 0 && len(sb.Endpoints) > 0 {
		ports, _, err := m.resolvePorts(req.Ports, sb.Endpoints[0].Addr)
		if err != nil {
			undo()
			return nil, err
		}
		sb.Ports = ports
	}
	if err := writeJSON(m.sandboxPath(sb.ContainerID), sb, false); err != nil {
		m.unreserve(keysOf(sb.Ports))
		undo()
		return nil, err
	}
	m.sandboxes[sb.ContainerID] = sb
	return copySandbox(sb), nil
}

// newEndpoint allocates an endpoint. Caller holds m.mu.
func (m *Manager) newEndpoint(sb *Sandbox, er EndpointRequest, index int) (*Endpoint, error) {
	n, err := m.find(er.Network)
	if err != nil {
		return nil, err
	}
	if sb.Endpoint(n.ID) != nil {
		return nil, errdefs.Forbidden(fmt.Errorf("endpoint with name %s already exists in network %s", sb.Name, n.Name))
	}
	if er.IPv4.IsValid() && !n.UserSubnet && !n.Default {
		return nil, errdefs.InvalidParameterf("user specified IP address is supported only when connecting to networks with user configured subnets")
	}
	if er.IPv4.IsValid() && n.Default {
		return nil, errdefs.InvalidParameterf("user specified IP address is supported on user defined networks only")
	}
	addr, err := m.pools[n.ID].allocate(er.IPv4)
	if err != nil {
		return nil, err
	}
	mac := er.MAC
	if len(mac) == 0 {
		mac = macFor(addr)
	}
	ep := &Endpoint{NetworkID: n.ID, EndpointID: randomID(), HostVeth: randomVethName(), IfName: fmt.Sprintf("eth%d", index),
		Addr: addr, MAC: mac, Aliases: er.Aliases, StaticIP: er.IPv4.IsValid()}
	// ifnames must be unique inside the namespace even after disconnects.
	for used := true; used; {
		used = false
		for _, o := range sb.Endpoints {
			if o.IfName == ep.IfName {
				index++
				ep.IfName, used = fmt.Sprintf("eth%d", index), true
			}
		}
	}
	if !n.Default {
		ep.DNSNames = dnsNames(sb, er.Aliases)
	}
	return ep, nil
}

func dnsNames(sb *Sandbox, aliases []string) []string {
	names := []string{sb.Name}
	for _, a := range aliases {
		if !slices.Contains(names, a) {
			names = append(names, a)
		}
	}
	if len(sb.ContainerID) >= 12 && !slices.Contains(names, sb.ContainerID[:12]) {
		names = append(names, sb.ContainerID[:12])
	}
	return names
}

func (m *Manager) sandboxPath(id string) string {
	return filepath.Join(m.cfg.sandboxDir(), id+".json")
}

// Plumb creates the namespace, the veths and the port rules of a sandbox
// made by Create.
func (m *Manager) Plumb(containerID string) error {
	m.mu.Lock()
	sb := m.sandboxes[containerID]
	if sb == nil {
		m.mu.Unlock()
		return errdefs.NotFoundf("no network sandbox for container %s", containerID)
	}
	sb = copySandbox(sb)
	type link struct {
		bridge string
		bits   int
		gw     netip.Addr
	}
	links := make([]link, len(sb.Endpoints))
	for i, ep := range sb.Endpoints {
		n := m.nets[ep.NetworkID]
		links[i] = link{n.Bridge, n.Subnet.Bits(), n.Gateway}
	}
	m.mu.Unlock()
	if err := newNetns(sb.NetnsPath); err != nil {
		return err
	}
	for i, ep := range sb.Endpoints {
		if err := plumb(sb.NetnsPath, ep, links[i].bridge, links[i].bits, links[i].gw, i == 0); err != nil {
			return fmt.Errorf("connect container to network: %w", err)
		}
	}
	if len(sb.Ports) > 0 {
		return m.syncRules()
	}
	return nil
}

// Release frees a container's networking: the bookkeeping at once, the
// kernel's interfaces in the background (deleting a veth can take a few
// milliseconds that a container's exit need not wait for).
func (m *Manager) Release(containerID string) {
	m.mu.Lock()
	sb := m.sandboxes[containerID]
	if sb == nil {
		m.mu.Unlock()
		return
	}
	delete(m.sandboxes, containerID)
	for _, ep := range sb.Endpoints {
		if p := m.pools[ep.NetworkID]; p != nil {
			p.release(ep.Addr)
		}
	}
	m.unreserve(keysOf(sb.Ports))
	os.Remove(m.sandboxPath(containerID))
	m.mu.Unlock()
	if len(sb.Ports) > 0 {
		if err := m.syncRules(); err != nil {
			m.log.Warn("remove port rules", "id", containerID, "err", err)
		}
	}
	removeNetns(sb.NetnsPath)
	m.teardown.Add(1)
	go func() {
		defer m.teardown.Done()
		for _, ep := range sb.Endpoints {
			unplumb(ep)
		}
	}()
}

// destroy tears down a sandbox found on disk at start.
func (m *Manager) destroy(sb *Sandbox) {
	removeNetns(sb.NetnsPath)
	for _, ep := range sb.Endpoints {
		unplumb(ep)
	}
}

// Sandbox returns a copy of a container's sandbox.
func (m *Manager) Sandbox(containerID string) (*Sandbox, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb := m.sandboxes[containerID]
	if sb == nil {
		return nil, false
	}
	return copySandbox(sb), true
}

// Sandboxes returns copies of all sandboxes.
func (m *Manager) Sandboxes() []*Sandbox {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Sandbox, 0, len(m.sandboxes))
	for _, sb := range m.sandboxes {
		out = append(out, copySandbox(sb))
	}
	return out
}

// Connect attaches a running container's sandbox to one more network.
func (m *Manager) Connect(containerID string, er EndpointRequest) (*Endpoint, error) {
	m.mu.Lock()
	sb := m.sandboxes[containerID]
	if sb == nil {
		m.mu.Unlock()
		return nil, errdefs.NotFoundf("container %s has no network sandbox", containerID)
	}
	ep, err := m.newEndpoint(sb, er, len(sb.Endpoints))
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	n := m.nets[ep.NetworkID]
	bridge, bits, gw := n.Bridge, n.Subnet.Bits(), n.Gateway
	nsPath := sb.NetnsPath
	first := len(sb.Endpoints) == 0
	m.mu.Unlock()
	if err := plumb(nsPath, ep, bridge, bits, gw, first); err != nil {
		m.mu.Lock()
		m.pools[ep.NetworkID].release(ep.Addr)
		m.mu.Unlock()
		unplumb(ep)
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	sb.Endpoints = append(sb.Endpoints, ep)
	writeJSON(m.sandboxPath(containerID), sb, false)
	cp := *ep
	return &cp, nil
}

// Disconnect detaches a running container from a network.
func (m *Manager) Disconnect(containerID, ref string) error {
	m.mu.Lock()
	n, err := m.find(ref)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	sb := m.sandboxes[containerID]
	var ep *Endpoint
	if sb != nil {
		ep = sb.Endpoint(n.ID)
	}
	if ep == nil {
		m.mu.Unlock()
		return errdefs.Forbidden(fmt.Errorf("container %s is not connected to network %s", containerID, n.Name))
	}
	sb.Endpoints = slices.DeleteFunc(sb.Endpoints, func(e *Endpoint) bool { return e == ep })
	m.pools[n.ID].release(ep.Addr)
	writeJSON(m.sandboxPath(containerID), sb, false)
	m.mu.Unlock()
	return unplumb(ep)
}

func copySandbox(sb *Sandbox) *Sandbox {
	cp := *sb
	cp.Endpoints = make([]*Endpoint, len(sb.Endpoints))
	for i, ep := range sb.Endpoints {
		e := *ep
		cp.Endpoints[i] = &e
	}
	cp.Ports = slices.Clone(sb.Ports)
	return &cp
}
