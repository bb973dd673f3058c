package compose

import (
	"context"
	"fmt"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/client"
)

// ensureNetworks creates the project's networks that do not exist yet and
// checks that external ones do.
func (c *Service) ensureNetworks(ctx context.Context, p *types.Project, pr *progress) error {
	for _, key := range p.NetworkNames() {
		n := p.Networks[key]
		if !c.networkUsed(p, key) {
			continue
		}
		_, err := c.API.NetworkInspect(ctx, n.Name, client.NetworkInspectOptions{})
		if err == nil {
			continue
		}
		if !isNotFound(err) {
			return fmt.Errorf("network %s: %w", n.Name, err)
		}
		if n.External {
			return fmt.Errorf("network %s declared as external, but could not be found", n.Name)
		}
		labels := map[string]string{LabelNetwork: key, LabelProject: p.Name, LabelVersion: c.version()}
		for k, v := range n.Labels {
			labels[k] = v
		}
		opts := client.NetworkCreateOptions{
			Driver: n.Driver, Options: n.DriverOpts, Labels: labels, Internal: n.Internal,
			Attachable: n.Attachable, EnableIPv4: n.EnableIPv4, EnableIPv6: n.EnableIPv6,
		}
		pr.event("Network", n.Name, "Creating")
		if _, err := c.API.NetworkCreate(ctx, n.Name, opts); err != nil {
			pr.event("Network", n.Name, "Error")
			return fmt.Errorf("create network %s: %w", n.Name, err)
		}
		pr.event("Network", n.Name, "Created")
	}
	return nil
}

// networkUsed: compose creates only networks some enabled service uses.
func (c *Service) networkUsed(p *types.Project, key string) bool {
	for _, s := range p.Services {
		if _, ok := s.Networks[key]; ok {
			return true
		}
	}
	return false
}

// ensureVolumes creates the project's named volumes that do not exist yet
// and checks that external ones do.
func (c *Service) ensureVolumes(ctx context.Context, p *types.Project, pr *progress) error {
	for _, key := range p.VolumeNames() {
		v := p.Volumes[key]
		_, err := c.API.VolumeInspect(ctx, v.Name, client.VolumeInspectOptions{})
		if err == nil {
			continue
		}
		if !isNotFound(err) {
			return fmt.Errorf("volume %s: %w (does the daemon have named volumes?)", v.Name, err)
		}
		if v.External {
			return fmt.Errorf("external volume %q not found", v.Name)
		}
		labels := map[string]string{LabelVolume: key, LabelProject: p.Name, LabelVersion: c.version()}
		for k, val := range v.Labels {
			labels[k] = val
		}
		pr.event("Volume", v.Name, "Creating")
		if _, err := c.API.VolumeCreate(ctx, client.VolumeCreateOptions{Name: v.Name, Driver: v.Driver, DriverOpts: v.DriverOpts, Labels: labels}); err != nil {
			pr.event("Volume", v.Name, "Error")
			return fmt.Errorf("create volume %s: %w", v.Name, missing(err, "named volumes"))
		}
		pr.event("Volume", v.Name, "Created")
	}
	return nil
}
