package compose

import (
	"context"
	"fmt"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/client"
)

// DownOptions are `compose down`'s flags.
type DownOptions struct {
	Volumes       bool   // -v: named project volumes and anonymous ones
	RemoveImages  string // --rmi local|all
	RemoveOrphans bool
	Timeout       *int
}

// Down stops and removes the project's containers, then its networks, and
// with -v its volumes.
func (c *Compose) Down(ctx context.Context, p *types.Project, o DownOptions) error {
	if o.RemoveImages != "" && o.RemoveImages != "local" && o.RemoveImages != "all" {
		return fmt.Errorf("invalid --rmi value %q: must be local or all", o.RemoveImages)
	}
	cts, err := c.containers(ctx, p.Name, true, nil)
	if err != nil {
		return err
	}
	// down -p without a file: the labels say what is the project's.
	modelless := len(p.Services) == 0 && len(p.DisabledServices) == 0
	if modelless {
		if p, err = c.adoptLabelled(ctx, p, o.Volumes); err != nil {
			return err
		}
	}
	// Dependents go first: stop in reverse start order.
	order, err := startOrder(p, p.ServiceNames())
	if err != nil {
		return err
	}
	rank := map[string]int{}
	for i, n := range reverse(order) {
		rank[n] = i
	}
	var orphans []string
	var todo []int
	for i, ct := range cts {
		svc := ct.Labels[LabelService]
		if _, ok := rank[svc]; !ok && ct.Labels[LabelOneoff] != "True" {
			if !o.RemoveOrphans && !modelless {
				orphans = append(orphans, containerName(ct))
				continue
			}
			rank[svc] = -1
		}
		todo = append(todo, i)
	}
	if len(orphans) > 0 {
		c.prog.warn("Found orphan containers ([%s]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.", strings.Join(orphans, " "))
	}
	for pass := -1; pass < len(order); pass++ {
		for _, i := range todo {
			ct := cts[i]
			if rank[ct.Labels[LabelService]] != pass {
				continue
			}
			name := containerName(ct)
			if ct.State == "running" || ct.State == "paused" || ct.State == "restarting" {
				c.prog.event("Container", name, "Stopping")
				if _, err := c.API.ContainerStop(ctx, ct.ID, client.ContainerStopOptions{Timeout: o.Timeout}); err != nil && !isNotFound(err) {
					return fmt.Errorf("stop container %s: %w", name, err)
				}
				c.prog.event("Container", name, "Stopped")
			}
			c.prog.event("Container", name, "Removing")
			if _, err := c.API.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: o.Volumes}); err != nil && !isNotFound(err) {
				return fmt.Errorf("remove container %s: %w", name, err)
			}
			c.prog.event("Container", name, "Removed")
		}
	}
	if o.RemoveImages != "" {
		for _, n := range order {
			s := p.Services[n]
			if o.RemoveImages == "local" && s.Image != "" {
				continue
			}
			ref := ImageName(p, s)
			c.prog.event("Image", ref, "Removing")
			if _, err := c.API.ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil {
				if isNotFound(err) {
					continue
				}
				return fmt.Errorf("remove image %s: %w", ref, err)
			}
			c.prog.event("Image", ref, "Removed")
		}
	}
	for _, key := range sortedNetworkKeys(p) {
		n := p.Networks[key]
		if n.External {
			continue
		}
		name := networkName(p, key)
		got, err := c.API.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("inspect network %s: %w", name, err)
		}
		if got.Network.Labels[LabelProject] != p.Name {
			continue // not ours: leave it
		}
		c.prog.event("Network", name, "Removing")
		if _, err := c.API.NetworkRemove(ctx, got.Network.ID, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove network %s: %w", name, err)
		}
		c.prog.event("Network", name, "Removed")
	}
	if o.Volumes {
		for _, key := range sortedVolumeKeys(p) {
			if p.Volumes[key].External {
				continue
			}
			name := volumeName(p, key)
			got, err := c.API.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("inspect volume %s: %w", name, err)
			}
			if got.Volume.Labels[LabelProject] != p.Name {
				continue
			}
			c.prog.event("Volume", name, "Removing")
			if _, err := c.API.VolumeRemove(ctx, name, client.VolumeRemoveOptions{}); err != nil && !isNotFound(err) {
				return fmt.Errorf("remove volume %s: %w", name, err)
			}
			c.prog.event("Volume", name, "Removed")
		}
	}
	return nil
}

func sortedNetworkKeys(p *types.Project) []string {
	m := map[string]bool{}
	for k := range p.Networks {
		m[k] = true
	}
	return sortedKeys(m)
}

func sortedVolumeKeys(p *types.Project) []string {
	m := map[string]bool{}
	for k := range p.Volumes {
		m[k] = true
	}
	return sortedKeys(m)
}

// adoptLabelled returns a copy of a model-less project holding the
// networks (and with volumes, the volumes) labelled with its name.
func (c *Compose) adoptLabelled(ctx context.Context, p *types.Project, volumes bool) (*types.Project, error) {
	q := *p
	q.Networks, q.Volumes = types.Networks{}, types.Volumes{}
	f := client.Filters{}.Add("label", LabelProject+"="+p.Name)
	nets, err := c.API.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list networks of project %s: %w", p.Name, err)
	}
	for _, n := range nets.Items {
		if n.Labels[LabelProject] == p.Name {
			q.Networks[n.Name] = types.NetworkConfig{Name: n.Name}
		}
	}
	if !volumes {
		return &q, nil
	}
	vols, err := c.API.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list volumes of project %s: %w", p.Name, err)
	}
	for _, v := range vols.Items {
		if v.Labels[LabelProject] == p.Name {
			q.Volumes[v.Name] = types.VolumeConfig{Name: v.Name}
		}
	}
	return &q, nil
}
