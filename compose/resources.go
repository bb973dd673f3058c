package compose

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	"github.com/berth-dev/berth/errdefs"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// usedNetworks and usedVolumes are the project resources the given services
// refer to, sorted by key.
func usedNetworks(p *types.Project, services []string) []string {
	seen := map[string]bool{}
	for _, n := range services {
		s := p.Services[n]
		if s.NetworkMode != "" {
			continue
		}
		for k := range s.Networks {
			seen[k] = true
		}
	}
	return sortedKeys(seen)
}

func usedVolumes(p *types.Project, services []string) []string {
	seen := map[string]bool{}
	for _, n := range services {
		for _, v := range p.Services[n].Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source != "" {
				if _, ok := p.Volumes[v.Source]; ok {
					seen[v.Source] = true
				}
			}
		}
	}
	return sortedKeys(seen)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ensureNetwork creates a project network unless it exists; an external one
// must exist.
func (c *Compose) ensureNetwork(ctx context.Context, p *types.Project, key string) error {
	n, ok := p.Networks[key]
	if !ok {
		return errdefs.InvalidParameter(fmt.Errorf("service refers to undefined network %s", key))
	}
	name := networkName(p, key)
	got, err := c.API.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err == nil {
		if !bool(n.External) {
			if l := got.Network.Labels[LabelProject]; l != p.Name {
				c.prog.warn("a network with name %s exists but was not created for project %q.\nSet `external: true` to use an existing network", name, p.Name)
			}
		}
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("inspect network %s: %w", name, err)
	}
	if n.External {
		return errdefs.NotFound(fmt.Errorf("network %s declared as external, but could not be found", name))
	}
	labels := map[string]string{}
	for k, v := range n.Labels {
		labels[k] = v
	}
	for k, v := range n.CustomLabels {
		labels[k] = v
	}
	labels[LabelNetwork] = key
	labels[LabelProject] = p.Name
	labels[LabelVersion] = ComposeVersion
	opts := client.NetworkCreateOptions{
		Driver:     n.Driver,
		Options:    n.DriverOpts,
		Internal:   n.Internal,
		Attachable: n.Attachable,
		Labels:     labels,
		EnableIPv4: n.EnableIPv4,
		EnableIPv6: n.EnableIPv6,
	}
	if n.Ipam.Driver != "" || len(n.Ipam.Config) > 0 {
		ipam := &network.IPAM{Driver: n.Ipam.Driver, Options: n.Ipam.Options}
		for _, pool := range n.Ipam.Config {
			cfg := network.IPAMConfig{AuxAddress: map[string]netip.Addr{}}
			if pfx, err := netip.ParsePrefix(pool.Subnet); err == nil {
				cfg.Subnet = pfx
			}
			if pfx, err := netip.ParsePrefix(pool.IPRange); err == nil {
				cfg.IPRange = pfx
			}
			if a, err := netip.ParseAddr(pool.Gateway); err == nil {
				cfg.Gateway = a
			}
			for k, v := range pool.AuxiliaryAddresses {
				if a, err := netip.ParseAddr(v); err == nil {
					cfg.AuxAddress[k] = a
				}
			}
			ipam.Config = append(ipam.Config, cfg)
		}
		opts.IPAM = ipam
	}
	c.prog.event("Network", name, "Creating")
	if _, err := c.API.NetworkCreate(ctx, name, opts); err != nil {
		return fmt.Errorf("create network %s: %w", name, err)
	}
	c.prog.event("Network", name, "Created")
	return nil
}

// ensureVolume creates a project volume unless it exists; an external one
// must exist.
func (c *Compose) ensureVolume(ctx context.Context, p *types.Project, key string) error {
	v := p.Volumes[key]
	name := volumeName(p, key)
	got, err := c.API.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	if err == nil {
		if !bool(v.External) && got.Volume.Labels[LabelProject] != p.Name {
			c.prog.warn("volume %q already exists but was not created by Docker Compose. Use `external: true` to use an existing volume", name)
		}
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("inspect volume %s: %w", name, err)
	}
	if v.External {
		return errdefs.NotFound(fmt.Errorf("external volume %q not found", name))
	}
	labels := map[string]string{}
	for k, val := range v.Labels {
		labels[k] = val
	}
	for k, val := range v.CustomLabels {
		labels[k] = val
	}
	labels[LabelVolume] = key
	labels[LabelProject] = p.Name
	labels[LabelVersion] = ComposeVersion
	c.prog.event("Volume", name, "Creating")
	if _, err := c.API.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Driver: v.Driver, DriverOpts: v.DriverOpts, Labels: labels}); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	c.prog.event("Volume", name, "Created")
	return nil
}
