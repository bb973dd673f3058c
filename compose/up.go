package compose

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// UpOptions are `compose up`'s flags.
type UpOptions struct {
	Services      []string
	Build         bool
	NoBuild       bool
	Wait          bool
	WaitTimeout   time.Duration
	Scale         map[string]int
	ForceRecreate bool
	NoRecreate    bool
	RemoveOrphans bool
	NoStart       bool
	Timeout       *int // stop timeout when recreating
}

// pollInterval is how often dependency and --wait checks look at a container.
var pollInterval = 250 * time.Millisecond

// Up creates what the project needs and converges each service to its
// configuration: containers whose config hash is unchanged are left alone,
// changed ones are recreated, missing ones created, extra replicas removed.
func (c *Compose) Up(ctx context.Context, p *types.Project, o UpOptions) error {
	if o.ForceRecreate && o.NoRecreate {
		return fmt.Errorf("--force-recreate and --no-recreate are incompatible")
	}
	names, err := selectServices(p, o.Services)
	if err != nil {
		return err
	}
	for svc, n := range o.Scale {
		s, ok := p.Services[svc]
		if !ok {
			return fmt.Errorf("no such service: %s", svc)
		}
		s.SetScale(n)
		p.Services[svc] = s
	}
	order, err := startOrder(p, names)
	if err != nil {
		return err
	}
	// Everything that can fail on the project itself is checked before
	// anything is created.
	specs := map[string]bool{}
	for _, n := range order {
		if _, err := buildContainer(p, p.Services[n], 1, "", "", false); err != nil {
			return err
		}
		specs[n] = true
	}
	if err := c.orphans(ctx, p, o.RemoveOrphans); err != nil {
		return err
	}
	for _, k := range usedNetworks(p, order) {
		if err := c.ensureNetwork(ctx, p, k); err != nil {
			return err
		}
	}
	for _, k := range usedVolumes(p, order) {
		if err := c.ensureVolume(ctx, p, k); err != nil {
			return err
		}
	}
	if err := c.ensureImages(ctx, p, order, o.Build, o.NoBuild); err != nil {
		return err
	}
	for _, n := range order {
		s := p.Services[n]
		if !o.NoStart {
			if err := c.waitDependencies(ctx, p, s); err != nil {
				return err
			}
		}
		if err := c.converge(ctx, p, s, o); err != nil {
			return err
		}
	}
	if o.Wait {
		wctx := ctx
		if o.WaitTimeout > 0 {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, o.WaitTimeout)
			defer cancel()
		}
		return c.waitReady(wctx, p, order)
	}
	return nil
}

// orphans finds containers of the project whose service is gone, and
// removes them or warns, as compose does.
func (c *Compose) orphans(ctx context.Context, p *types.Project, remove bool) error {
	cts, err := c.containers(ctx, p.Name, true, ptr(false))
	if err != nil {
		return err
	}
	var names []string
	for _, ct := range cts {
		svc := ct.Labels[LabelService]
		if _, ok := p.Services[svc]; ok {
			continue
		}
		if _, ok := p.DisabledServices[svc]; ok {
			continue
		}
		if remove {
			if err := c.removeContainer(ctx, ct, nil, false); err != nil {
				return err
			}
			continue
		}
		names = append(names, containerName(ct))
	}
	if len(names) > 0 {
		c.prog.warn("Found orphan containers ([%s]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.", strings.Join(names, " "))
	}
	return nil
}

// converge brings one service to its wanted replicas and configuration.
func (c *Compose) converge(ctx context.Context, p *types.Project, s types.ServiceConfig, o UpOptions) error {
	hash, err := ConfigHash(s)
	if err != nil {
		return err
	}
	existing, err := c.containers(ctx, p.Name, true, ptr(false), s.Name)
	if err != nil {
		return err
	}
	want := s.GetScale()
	if s.ContainerName != "" && want > 1 {
		return fmt.Errorf("service %s: container_name %q cannot be used with more than one replica", s.Name, s.ContainerName)
	}
	imageID, _, err := c.imageExists(ctx, ImageName(p, s))
	if err != nil {
		return err
	}
	used := map[int]bool{}
	kept := 0
	for _, ct := range existing {
		n, _ := strconv.Atoi(ct.Labels[LabelNumber])
		if kept >= want || used[n] {
			if err := c.removeContainer(ctx, ct, o.Timeout, false); err != nil {
				return err
			}
			continue
		}
		kept++
		used[n] = true
		outdated := ct.Labels[LabelConfigHash] != hash || (imageID != "" && ct.Labels[LabelImage] != "" && ct.Labels[LabelImage] != imageID)
		if o.ForceRecreate || (outdated && !o.NoRecreate) {
			name := containerName(ct)
			c.prog.event("Container", name, "Recreate")
			if err := c.removeContainer(ctx, ct, o.Timeout, true); err != nil {
				return err
			}
			if err := c.createAndStart(ctx, p, s, n, imageID, !o.NoStart); err != nil {
				return err
			}
			c.prog.event("Container", name, "Recreated")
			continue
		}
		if o.NoStart {
			continue
		}
		if ct.State == container.StateRunning {
			c.prog.event("Container", containerName(ct), "Running")
			continue
		}
		if err := c.start(ctx, ct.ID, containerName(ct)); err != nil {
			return err
		}
	}
	for n := 1; kept < want; n++ {
		if used[n] {
			continue
		}
		used[n] = true
		kept++
		if err := c.createAndStart(ctx, p, s, n, imageID, !o.NoStart); err != nil {
			return err
		}
	}
	return nil
}

func (c *Compose) createAndStart(ctx context.Context, p *types.Project, s types.ServiceConfig, n int, imageID string, start bool) error {
	name := ContainerName(p, s, n)
	id, err := c.create(ctx, p, s, n, name, imageID, false)
	if err != nil {
		return err
	}
	if !start {
		return nil
	}
	return c.start(ctx, id, name)
}

// create makes one container and connects its other networks.
func (c *Compose) create(ctx context.Context, p *types.Project, s types.ServiceConfig, n int, name, imageID string, oneoff bool) (string, error) {
	spec, err := buildContainer(p, s, n, name, imageID, oneoff)
	if err != nil {
		return "", err
	}
	c.prog.event("Container", name, "Creating")
	res, err := c.API.ContainerCreate(ctx, spec.Create)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", name, err)
	}
	for net, ep := range spec.MoreNets {
		if _, err := c.API.NetworkConnect(ctx, net, client.NetworkConnectOptions{Container: res.ID, EndpointConfig: ep}); err != nil {
			// Nothing half-made: the container goes if it cannot be wired.
			_, _ = c.API.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true})
			return "", fmt.Errorf("connect %s to network %s: %w", name, net, err)
		}
	}
	c.prog.event("Container", name, "Created")
	return res.ID, nil
}

func (c *Compose) start(ctx context.Context, id, name string) error {
	c.prog.event("Container", name, "Starting")
	if _, err := c.API.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", name, err)
	}
	c.prog.event("Container", name, "Started")
	return nil
}

// removeContainer stops and removes a container (quiet: as part of a
// recreate, whose own event is printed).
func (c *Compose) removeContainer(ctx context.Context, ct container.Summary, timeout *int, quiet bool) error {
	name := containerName(ct)
	if ct.State == container.StateRunning || ct.State == container.StatePaused || ct.State == container.StateRestarting {
		if !quiet {
			c.prog.event("Container", name, "Stopping")
		}
		if _, err := c.API.ContainerStop(ctx, ct.ID, client.ContainerStopOptions{Timeout: timeout}); err != nil && !isNotFound(err) {
			return fmt.Errorf("stop container %s: %w", name, err)
		}
		if !quiet {
			c.prog.event("Container", name, "Stopped")
		}
	}
	if !quiet {
		c.prog.event("Container", name, "Removing")
	}
	if _, err := c.API.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove container %s: %w", name, err)
	}
	if !quiet {
		c.prog.event("Container", name, "Removed")
	}
	return nil
}

// waitDependencies blocks until each dependency meets its condition.
func (c *Compose) waitDependencies(ctx context.Context, p *types.Project, s types.ServiceConfig) error {
	for _, dep := range sortedDeps(s) {
		d := s.DependsOn[dep]
		if _, ok := p.Services[dep]; !ok {
			continue
		}
		cts, err := c.containers(ctx, p.Name, true, ptr(false), dep)
		if err != nil {
			return err
		}
		for _, ct := range cts {
			name := containerName(ct)
			switch d.Condition {
			case types.ServiceConditionHealthy:
				c.prog.event("Container", name, "Waiting")
				if err := c.waitHealthy(ctx, ct.ID, name, false); err != nil {
					if !d.Required {
						c.prog.warn("optional dependency %q failed: %v", dep, err)
						continue
					}
					return fmt.Errorf("dependency failed to start: %w", err)
				}
				c.prog.event("Container", name, "Healthy")
			case types.ServiceConditionCompletedSuccessfully:
				c.prog.event("Container", name, "Waiting")
				if err := c.waitExited(ctx, ct.ID, name); err != nil {
					if !d.Required {
						c.prog.warn("optional dependency %q failed: %v", dep, err)
						continue
					}
					return err
				}
				c.prog.event("Container", name, "Exited")
			}
		}
	}
	return nil
}

func sortedDeps(s types.ServiceConfig) []string {
	m := map[string]bool{}
	for d := range s.DependsOn {
		m[d] = true
	}
	return sortedKeys(m)
}

// waitHealthy polls the container until its health check passes. Without a
// health check, healthy means running when lenient (--wait), else an error.
func (c *Compose) waitHealthy(ctx context.Context, id, name string, lenient bool) error {
	for {
		res, err := c.API.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect %s: %w", name, err)
		}
		st := res.Container.State
		if st == nil {
			return fmt.Errorf("container %s has no state", name)
		}
		if st.Health == nil {
			if !lenient {
				return fmt.Errorf("container %s has no healthcheck configured", name)
			}
			if st.Running {
				return nil
			}
		} else {
			switch st.Health.Status {
			case container.Healthy:
				return nil
			case container.Unhealthy:
				return fmt.Errorf("container %s is unhealthy", name)
			}
		}
		if !st.Running && st.Status != container.StateRestarting && st.Status != container.StateCreated {
			return fmt.Errorf("container %s exited (%d)", name, st.ExitCode)
		}
		if err := sleep(ctx); err != nil {
			return fmt.Errorf("waiting for %s: %w", name, err)
		}
	}
}

// waitExited polls until the container exits; a non-zero code is an error.
func (c *Compose) waitExited(ctx context.Context, id, name string) error {
	for {
		res, err := c.API.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect %s: %w", name, err)
		}
		if st := res.Container.State; st != nil && st.Status == container.StateExited {
			if st.ExitCode != 0 {
				return fmt.Errorf("service %q didn't complete successfully: exit %d", res.Container.Config.Labels[LabelService], st.ExitCode)
			}
			return nil
		}
		if err := sleep(ctx); err != nil {
			return fmt.Errorf("waiting for %s: %w", name, err)
		}
	}
}

// waitReady is --wait: every container running, and healthy if it has a
// health check (containers expected to exit are skipped once they did
// with status 0, as compose does for service_completed_successfully deps).
func (c *Compose) waitReady(ctx context.Context, p *types.Project, services []string) error {
	cts, err := c.containers(ctx, p.Name, true, ptr(false), services...)
	if err != nil {
		return err
	}
	completed := map[string]bool{}
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				completed[dep] = true
			}
		}
	}
	for _, ct := range cts {
		name := containerName(ct)
		c.prog.event("Container", name, "Waiting")
		if completed[ct.Labels[LabelService]] {
			if err := c.waitExited(ctx, ct.ID, name); err != nil {
				return err
			}
			c.prog.event("Container", name, "Exited")
			continue
		}
		if err := c.waitHealthy(ctx, ct.ID, name, true); err != nil {
			return err
		}
		c.prog.event("Container", name, "Healthy")
	}
	return nil
}

func sleep(ctx context.Context) error {
	t := time.NewTimer(pollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
