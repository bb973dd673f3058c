package compose

import (
	"context"
	"fmt"
	"slices"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/client"
)

// DownOptions are `compose down`'s flags.
type DownOptions struct {
	Volumes       bool   // -v: remove named volumes too
	RemoveImages  string // --rmi: "", "local" or "all"
	RemoveOrphans bool
}

// Down stops and removes the project's containers (dependents first),
// then its networks, and with -v its volumes.
func (c *Service) Down(ctx context.Context, p *types.Project, o DownOptions) error {
	if o.RemoveImages != "" && o.RemoveImages != "local" && o.RemoveImages != "all" {
		return fmt.Errorf("invalid --rmi %q: must be local or all", o.RemoveImages)
	}
	pr := c.progress()
	all, err := c.listContainers(ctx, p.Name, true)
	if err != nil {
		return err
	}
	// Dependents stop before what they depend on.
	for _, svc := range inOrder(p, p.ServiceNames(), true) {
		for _, ct := range all {
			if ct.Labels[LabelService] == svc {
				if err := c.removeContainer(ctx, ct, p.Services[svc], pr); err != nil {
					return err
				}
			}
		}
	}
	// What is left belongs to no enabled service: one-offs and orphans.
	for _, ct := range all {
		svc := ct.Labels[LabelService]
		if _, ok := p.Services[svc]; ok {
			continue
		}
		if ct.Labels[LabelOneoff] != "True" && !o.RemoveOrphans && len(p.Services) > 0 {
			if _, disabled := p.DisabledServices[svc]; !disabled {
				continue
			}
		}
		if err := c.removeContainer(ctx, ct, types.ServiceConfig{}, pr); err != nil {
			return err
		}
	}
	if len(p.Services) == 0 {
		// No model (down -p without a file): the labels say what is the project's.
		if err := c.adoptLabelled(ctx, p, o.Volumes); err != nil {
			return err
		}
	}
	if err := c.removeNetworks(ctx, p, pr); err != nil {
		return err
	}
	if o.Volumes {
		if err := c.removeVolumes(ctx, p, pr); err != nil {
			return err
		}
	}
	if o.RemoveImages != "" {
		for _, ref := range projectImages(p, o.RemoveImages == "local") {
			if c.imageID(ctx, ref) == "" {
				continue
			}
			pr.event("Image", ref, "Removing")
			if _, err := c.API.ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil && !isNotFound(err) {
				pr.event("Image", ref, "Error")
				return fmt.Errorf("remove image %s: %w", ref, err)
			}
			pr.event("Image", ref, "Removed")
		}
	}
	return nil
}

func (c *Service) removeNetworks(ctx context.Context, p *types.Project, pr *progress) error {
	for _, key := range p.NetworkNames() {
		n := p.Networks[key]
		if n.External {
			continue
		}
		res, err := c.API.NetworkInspect(ctx, n.Name, client.NetworkInspectOptions{})
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return fmt.Errorf("network %s: %w", n.Name, err)
		}
		// Only a network this project made: same name, other owner is left alone.
		if res.Network.Labels[LabelProject] != p.Name {
			if c.Err != nil {
				fmt.Fprintf(c.Err, "WARN[0000] network %s was not created by this project, left in place\n", n.Name)
			}
			continue
		}
		pr.event("Network", n.Name, "Removing")
		if _, err := c.API.NetworkRemove(ctx, n.Name, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
			pr.event("Network", n.Name, "Error")
			return fmt.Errorf("remove network %s: %w", n.Name, err)
		}
		pr.event("Network", n.Name, "Removed")
	}
	return nil
}

func (c *Service) removeVolumes(ctx context.Context, p *types.Project, pr *progress) error {
	names := p.VolumeNames()
	slices.Sort(names)
	for _, key := range names {
		v := p.Volumes[key]
		if v.External {
			continue
		}
		res, err := c.API.VolumeInspect(ctx, v.Name, client.VolumeInspectOptions{})
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if res.Volume.Labels[LabelProject] != p.Name {
			if c.Err != nil {
				fmt.Fprintf(c.Err, "WARN[0000] volume %s was not created by this project, left in place\n", v.Name)
			}
			continue
		}
		pr.event("Volume", v.Name, "Removing")
		if _, err := c.API.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{}); err != nil && !isNotFound(err) {
			pr.event("Volume", v.Name, "Error")
			return fmt.Errorf("remove volume %s: %w", v.Name, err)
		}
		pr.event("Volume", v.Name, "Removed")
	}
	return nil
}

// adoptLabelled adds the networks (and volumes) labelled with the project
// to a model-less project so Down removes them.
func (c *Service) adoptLabelled(ctx context.Context, p *types.Project, volumes bool) error {
	f := client.Filters{}.Add("label", LabelProject+"="+p.Name)
	nets, err := c.API.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("list networks of project %s: %w", p.Name, err)
	}
	for _, n := range nets.Items {
		if n.Labels[LabelProject] != p.Name {
			continue
		}
		if p.Networks == nil {
			p.Networks = types.Networks{}
		}
		p.Networks[n.Name] = types.NetworkConfig{Name: n.Name}
	}
	if !volumes {
		return nil
	}
	vols, err := c.API.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("list volumes of project %s: %w", p.Name, err)
	}
	for _, v := range vols.Items {
		if v.Labels[LabelProject] != p.Name {
			continue
		}
		if p.Volumes == nil {
			p.Volumes = types.Volumes{}
		}
		p.Volumes[v.Name] = types.VolumeConfig{Name: v.Name}
	}
	return nil
}
