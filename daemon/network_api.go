package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/berth-dev/berth/network"
	eventtypes "github.com/moby/moby/api/types/events"
	apinet "github.com/moby/moby/api/types/network"
)

var _ api.NetworkBackend = (*Daemon)(nil)

// The host and none networks are not the manager's: they have no bridge.
// Their IDs are stable per data root.
func (d *Daemon) pseudoNetworkID(name string) string {
	sum := sha256.Sum256([]byte(d.cfg.DataRoot + "\x00" + name))
	return hex.EncodeToString(sum[:])
}

func (d *Daemon) pseudoNetworks() []apinet.Inspect {
	var created = d.started
	if def, err := d.net.m.Network(apinet.NetworkBridge); err == nil {
		created = def.Created
	}
	var out []apinet.Inspect
	for _, p := range []struct{ name, driver string }{{"host", "host"}, {"none", "null"}} {
		out = append(out, apinet.Inspect{
			Network: apinet.Network{Name: p.name, ID: d.pseudoNetworkID(p.name), Created: created, Scope: "local", Driver: p.driver,
				EnableIPv4: true, IPAM: apinet.IPAM{Driver: "default", Config: []apinet.IPAMConfig{}},
				Options: map[string]string{}, Labels: map[string]string{}},
			Containers: d.pseudoContainers(p.name),
		})
	}
	return out
}

func (d *Daemon) pseudoContainers(mode string) map[string]apinet.EndpointResource {
	out := map[string]apinet.EndpointResource{}
	for _, c := range d.containers.list() {
		c.mu.Lock()
		if c.State.running() && networkMode(c.HostConfig) == mode {
			out[c.ID] = apinet.EndpointResource{Name: trimSlash(c.Name), EndpointID: d.pseudoNetworkID(c.ID)}
		}
		c.mu.Unlock()
	}
	return out
}

func (d *Daemon) inspectNetwork(n *network.Network) apinet.Inspect {
	cfg := apinet.IPAMConfig{Subnet: n.Subnet, Gateway: n.Gateway}
	if n.IPRange.IsValid() {
		cfg.IPRange = n.IPRange
	}
	opts := n.Options
	if opts == nil {
		opts = map[string]string{}
	}
	labels := n.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	out := apinet.Inspect{
		Network: apinet.Network{Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: "bridge",
			EnableIPv4: true, EnableIPv6: n.EnableIPv6, Internal: n.Internal,
			IPAM:    apinet.IPAM{Driver: "default", Config: []apinet.IPAMConfig{cfg}},
			Options: opts, Labels: labels},
		Containers: map[string]apinet.EndpointResource{},
	}
	for _, sb := range d.net.m.Sandboxes() {
		if ep := sb.Endpoint(n.ID); ep != nil {
			out.Containers[sb.ContainerID] = apinet.EndpointResource{Name: sb.Name, EndpointID: ep.EndpointID,
				MacAddress: apinet.HardwareAddr(ep.MAC), IPv4Address: netip.PrefixFrom(ep.Addr, n.Subnet.Bits())}
		}
	}
	return out
}

// NetworkCreate implements api.NetworkBackend.
func (d *Daemon) NetworkCreate(ctx context.Context, req apinet.CreateRequest) (apinet.CreateResponse, error) {
	if req.Driver != "" && req.Driver != "bridge" {
		return apinet.CreateResponse{}, errdefs.NotImplemented(errdefsf("network driver %q is not supported (bridge is)", req.Driver))
	}
	if req.ConfigOnly || req.ConfigFrom != nil && req.ConfigFrom.Network != "" || req.Ingress {
		return apinet.CreateResponse{}, errdefs.NotImplemented(errdefsf("config-only, config-from and ingress networks are not supported"))
	}
	if req.Name == "host" || req.Name == "none" {
		return apinet.CreateResponse{}, errdefs.Forbidden(errdefsf("%s is a pre-defined network and cannot be created", req.Name))
	}
	cr := network.CreateRequest{Name: req.Name, Internal: req.Internal, Labels: req.Labels, Options: req.Options}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		cr.IPv6 = true
	}
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return apinet.CreateResponse{}, errdefs.NotImplemented(errdefsf("IPAM driver %q is not supported", req.IPAM.Driver))
		}
		for _, c := range req.IPAM.Config {
			if c.Subnet.Addr().Is6() {
				if !cr.IPv6 {
					return apinet.CreateResponse{}, errdefs.InvalidParameterf("IPv6 subnet %s given but IPv6 is not enabled", c.Subnet)
				}
				return apinet.CreateResponse{}, errdefs.NotImplemented(errdefsf("IPv6 subnets are not supported yet"))
			}
			if cr.Subnet.IsValid() {
				return apinet.CreateResponse{}, errdefs.NotImplemented(errdefsf("only one IPv4 subnet per network is supported"))
			}
			cr.Subnet, cr.Gateway, cr.IPRange = c.Subnet, c.Gateway, c.IPRange
			if !cr.Subnet.IsValid() && (cr.Gateway.IsValid() || cr.IPRange.IsValid()) {
				return apinet.CreateResponse{}, errdefs.InvalidParameterf("gateway and ip-range need a subnet")
			}
		}
	}
	n, err := d.net.m.CreateNetwork(cr)
	if err != nil {
		return apinet.CreateResponse{}, err
	}
	d.events.Publish(eventtypes.NetworkEventType, eventtypes.ActionCreate, n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	return apinet.CreateResponse{ID: n.ID}, nil
}

// NetworkList implements api.NetworkBackend.
func (d *Daemon) NetworkList(ctx context.Context, f filters.Args) ([]apinet.Inspect, error) {
	if err := f.Validate("dangling", "driver", "id", "label", "name", "scope", "type"); err != nil {
		return nil, err
	}
	all := []apinet.Inspect{}
	for _, n := range d.net.m.Networks() {
		all = append(all, d.inspectNetwork(n))
	}
	all = append(all, d.pseudoNetworks()...)
	out := []apinet.Inspect{}
	for _, n := range all {
		builtin := n.Name == "bridge" || n.Name == "host" || n.Name == "none"
		switch {
		case f.Has("name") && !f.Match("name", n.Name),
			f.Has("id") && !matchIDPrefix(f.Get("id"), n.ID),
			f.Has("driver") && !f.ExactMatch("driver", n.Driver),
			f.Has("scope") && !f.ExactMatch("scope", n.Scope),
			!f.MatchLabels("label", n.Labels),
			f.Has("type") && !(f.ExactMatch("type", "builtin") && builtin || f.ExactMatch("type", "custom") && !builtin),
			f.Has("dangling") && (f.ExactMatch("dangling", "true") || f.ExactMatch("dangling", "1")) && (builtin || len(n.Containers) > 0),
			f.Has("dangling") && (f.ExactMatch("dangling", "false") || f.ExactMatch("dangling", "0")) && !(builtin || len(n.Containers) > 0):
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

// NetworkInspect implements api.NetworkBackend.
func (d *Daemon) NetworkInspect(ctx context.Context, ref string, verbose bool) (apinet.Inspect, error) {
	for _, p := range d.pseudoNetworks() {
		if ref == p.Name || ref == p.ID || len(ref) >= 1 && strings.HasPrefix(p.ID, ref) && len(ref) >= 12 {
			return p, nil
		}
	}
	n, err := d.net.m.Network(ref)
	if err != nil {
		return apinet.Inspect{}, err
	}
	return d.inspectNetwork(n), nil
}

// NetworkRemove implements api.NetworkBackend.
func (d *Daemon) NetworkRemove(ctx context.Context, ref string) error {
	if ref == "host" || ref == "none" {
		return errdefs.Forbidden(errdefsf("%s is a pre-defined network and cannot be removed", ref))
	}
	n, err := d.net.m.Network(ref)
	if err != nil {
		return err
	}
	if err := d.net.m.RemoveNetwork(n.ID, nil); err != nil {
		return err
	}
	d.events.Publish(eventtypes.NetworkEventType, eventtypes.ActionDestroy, n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	return nil
}

// NetworksPrune implements api.NetworkBackend: removes user networks
// without endpoints.
func (d *Daemon) NetworksPrune(ctx context.Context, f filters.Args) (apinet.PruneReport, error) {
	if err := f.Validate("label", "label!", "until"); err != nil {
		return apinet.PruneReport{}, err
	}
	rep := apinet.PruneReport{NetworksDeleted: []string{}}
	for _, n := range d.net.m.Networks() {
		if n.Default || !f.MatchLabels("label", n.Labels) || f.Has("label!") && matchesAnyLabel(f.Get("label!"), n.Labels) {
			continue
		}
		if err := d.net.m.RemoveNetwork(n.ID, nil); err != nil {
			continue
		}
		d.events.Publish(eventtypes.NetworkEventType, eventtypes.ActionDestroy, n.ID, map[string]string{"name": n.Name, "type": "bridge"})
		rep.NetworksDeleted = append(rep.NetworksDeleted, n.Name)
	}
	d.events.Publish(eventtypes.NetworkEventType, eventtypes.ActionPrune, "", map[string]string{})
	return rep, nil
}

// NetworkConnect implements api.NetworkBackend.
func (d *Daemon) NetworkConnect(ctx context.Context, ref string, req apinet.ConnectRequest) error {
	if ref == "host" || ref == "none" {
		return errdefs.Forbidden(errdefsf("container cannot be disconnected from host network or connected to host network"))
	}
	n, err := d.net.m.Network(ref)
	if err != nil {
		return err
	}
	c, err := d.containers.get(req.Container)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	nm := networkMode(c.HostConfig)
	if !usesSandbox(nm) {
		return errdefs.Forbidden(errdefsf("container sharing network namespace with another container or host cannot be connected to any other network"))
	}
	es := req.EndpointConfig
	if es == nil {
		es = &apinet.EndpointSettings{}
	}
	eps := d.endpointConfigs(c)
	for name := range eps {
		if other, err := d.net.m.Network(name); err == nil && other.ID == n.ID {
			return errdefs.Forbidden(errdefsf("endpoint with name %s already exists in network %s", trimSlash(c.Name), n.Name))
		}
	}
	if c.State.running() {
		er := network.EndpointRequest{Network: n.ID, Aliases: es.Aliases}
		if es.IPAMConfig != nil {
			er.IPv4 = es.IPAMConfig.IPv4Address
		}
		if _, err := d.net.m.Connect(c.ID, er); err != nil {
			return err
		}
	}
	d.net.mu.Lock()
	eps[n.Name] = es.Copy()
	err = writeJSONFile(c.dir+"/"+endpointsFile, eps)
	d.net.mu.Unlock()
	d.events.Publish(eventtypes.NetworkEventType, eventtypes.ActionConnect, n.ID, map[string]string{"name": n.Name, "type": "bridge", "container": c.ID})
	return err
}

// NetworkDisconnect implements api.NetworkBackend.
func (d *Daemon) NetworkDisconnect(ctx context.Context, ref string, req apinet.DisconnectRequest) error {
	n, err := d.net.m.Network(ref)
	if err != nil {
		return err
	}
	c, err := d.containers.get(req.Container)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	eps := d.endpointConfigs(c)
	key := ""
	for name := range eps {
		if other, err := d.net.m.Network(name); err == nil && other.ID == n.ID {
			key = name
		}
	}
	if key == "" {
		return errdefs.Forbidden(errdefsf("container %s is not connected to network %s", c.ID, n.Name))
	}
	if c.State.running() {
		if err := d.net.m.Disconnect(c.ID, n.ID); err != nil && !req.Force {
			return err
		}
	}
	d.net.mu.Lock()
	delete(eps, key)
	err = writeJSONFile(c.dir+"/"+endpointsFile, eps)
	d.net.mu.Unlock()
	d.events.Publish(eventtypes.NetworkEventType, eventtypes.ActionDisconnect, n.ID, map[string]string{"name": n.Name, "type": "bridge", "container": c.ID})
	return err
}

func errdefsf(format string, a ...any) error { return fmt.Errorf(format, a...) }
