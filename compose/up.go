package compose

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// UpOptions are `compose up`'s flags.
type UpOptions struct {
	Services      []string
	Build         bool // --build: build images before starting
	NoBuild       bool
	NoStart       bool // `compose create`
	Wait          bool
	WaitTimeout   time.Duration
	Scale         map[string]int
	ForceRecreate bool
	NoRecreate    bool
	RemoveOrphans bool
}

// Up creates and starts the project's containers, recreating only those
// whose configuration (config-hash) or image changed.
func (c *Service) Up(ctx context.Context, p *types.Project, o UpOptions) error {
	for svc, n := range o.Scale {
		if _, ok := p.Services[svc]; !ok {
			return fmt.Errorf("--scale: no such service: %s", svc)
		}
		if n < 0 {
			return fmt.Errorf("--scale %s=%d: must not be negative", svc, n)
		}
	}
	if len(o.Services) > 0 {
		sel, err := p.WithSelectedServices(o.Services)
		if err != nil {
			return err
		}
		p = sel
	}
	pr := c.progress()
	if err := c.orphans(ctx, p, o.RemoveOrphans, pr); err != nil {
		return err
	}
	if err := c.ensureImages(ctx, p, o.Build, o.NoBuild, pr); err != nil {
		return err
	}
	if err := c.ensureNetworks(ctx, p, pr); err != nil {
		return err
	}
	if err := c.ensureVolumes(ctx, p, pr); err != nil {
		return err
	}
	// Sequential, dependencies first: a failed dependency stops the rest.
	for _, svc := range inOrder(p, p.ServiceNames(), false) {
		s := p.Services[svc]
		if !o.NoStart {
			if err := c.waitDependencies(ctx, p, s, pr); err != nil {
				return err
			}
		}
		if err := c.converge(ctx, p, s, o, pr); err != nil {
			return err
		}
	}
	if o.Wait && !o.NoStart {
		wctx := ctx
		if o.WaitTimeout > 0 {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, o.WaitTimeout)
			defer cancel()
		}
		return c.waitProject(wctx, p, pr)
	}
	return nil
}

// scaleOf is how many containers a service wants.
func scaleOf(s types.ServiceConfig, override map[string]int) int {
	if n, ok := override[s.Name]; ok {
		return n
	}
	if s.Scale != nil {
		return *s.Scale
	}
	if s.Deploy != nil && s.Deploy.Replicas != nil {
		return *s.Deploy.Replicas
	}
	return 1
}

// converge brings one service's containers to the wanted number and
// configuration.
func (c *Service) converge(ctx context.Context, p *types.Project, s types.ServiceConfig, o UpOptions, pr *progress) error {
	hash, err := ConfigHash(s)
	if err != nil {
		return fmt.Errorf("service %s: hash: %w", s.Name, err)
	}
	want := scaleOf(s, o.Scale)
	if s.ContainerName != "" && want > 1 {
		return fmt.Errorf("service %s: container_name %q allows only one container, not %d", s.Name, s.ContainerName, want)
	}
	imageID := c.imageID(ctx, imageName(p, s))
	existing, err := c.listContainers(ctx, p.Name, false, s.Name)
	if err != nil {
		return err
	}
	have := map[int]bool{}
	for _, ct := range existing {
		n := number(ct)
		if n > want || have[n] {
			if err := c.removeContainer(ctx, ct, s, pr); err != nil {
				return err
			}
			continue
		}
		have[n] = true
		stale := ct.Labels[LabelConfigHash] != hash ||
			(imageID != "" && ct.Labels[LabelImage] != "" && ct.Labels[LabelImage] != imageID)
		if o.ForceRecreate || (stale && !o.NoRecreate) {
			pr.event("Container", name(ct), "Recreate")
			if err := c.removeContainer(ctx, ct, s, nil); err != nil {
				return err
			}
			if err := c.createAndStart(ctx, p, s, n, hash, imageID, o.NoStart, pr); err != nil {
				return err
			}
			continue
		}
		if o.NoStart {
			continue
		}
		if ct.State == container.StateRunning {
			pr.event("Container", name(ct), "Running")
			continue
		}
		if err := c.startContainer(ctx, ct.ID, name(ct), pr); err != nil {
			return err
		}
	}
	for n := 1; n <= want; n++ {
		if have[n] {
			continue
		}
		if err := c.createAndStart(ctx, p, s, n, hash, imageID, o.NoStart, pr); err != nil {
			return err
		}
	}
	return nil
}

func (c *Service) createAndStart(ctx context.Context, p *types.Project, s types.ServiceConfig, n int, hash, imageID string, noStart bool, pr *progress) error {
	opts, err := c.createOptions(p, s, n, hash, imageID, false)
	if err != nil {
		return err
	}
	pr.event("Container", opts.Name, "Creating")
	res, err := c.API.ContainerCreate(ctx, opts)
	if err != nil {
		pr.event("Container", opts.Name, "Error")
		return fmt.Errorf("create container %s: %w", opts.Name, err)
	}
	pr.event("Container", opts.Name, "Created")
	if noStart {
		return nil
	}
	return c.startContainer(ctx, res.ID, opts.Name, pr)
}

func (c *Service) startContainer(ctx context.Context, id, name string, pr *progress) error {
	pr.event("Container", name, "Starting")
	if _, err := c.API.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		pr.event("Container", name, "Error")
		return fmt.Errorf("start container %s: %w", name, err)
	}
	pr.event("Container", name, "Started")
	return nil
}

func stopTimeout(s types.ServiceConfig) *int {
	if s.StopGracePeriod == nil {
		return nil
	}
	t := int(time.Duration(*s.StopGracePeriod).Seconds())
	return &t
}

// removeContainer stops (if running) and removes one container.
func (c *Service) removeContainer(ctx context.Context, ct container.Summary, s types.ServiceConfig, pr *progress) error {
	n := name(ct)
	if ct.State == container.StateRunning || ct.State == container.StateRestarting || ct.State == container.StatePaused {
		pr.event("Container", n, "Stopping")
		if _, err := c.API.ContainerStop(ctx, ct.ID, client.ContainerStopOptions{Timeout: stopTimeout(s)}); err != nil && !isNotFound(err) {
			return fmt.Errorf("stop container %s: %w", n, err)
		}
		pr.event("Container", n, "Stopped")
	}
	pr.event("Container", n, "Removing")
	if _, err := c.API.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove container %s: %w", n, err)
	}
	pr.event("Container", n, "Removed")
	return nil
}

// orphans warns about (or removes) containers of services no longer in
// the project.
func (c *Service) orphans(ctx context.Context, p *types.Project, remove bool, pr *progress) error {
	all, err := c.listContainers(ctx, p.Name, false)
	if err != nil {
		return err
	}
	var found []container.Summary
	for _, ct := range all {
		svc := ct.Labels[LabelService]
		if _, ok := p.Services[svc]; ok {
			continue
		}
		if _, ok := p.DisabledServices[svc]; ok {
			continue
		}
		found = append(found, ct)
	}
	if len(found) == 0 {
		return nil
	}
	if !remove {
		if c.Err != nil {
			fmt.Fprintf(c.Err, "WARN[0000] Found orphan containers (")
			for i, ct := range found {
				if i > 0 {
					fmt.Fprint(c.Err, " ")
				}
				fmt.Fprintf(c.Err, "[%s]", name(ct))
			}
			fmt.Fprintf(c.Err, ") for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.\n")
		}
		return nil
	}
	for _, ct := range found {
		if err := c.removeContainer(ctx, ct, types.ServiceConfig{}, pr); err != nil {
			return err
		}
	}
	return nil
}

// waitDependencies blocks until s's dependencies meet their conditions.
func (c *Service) waitDependencies(ctx context.Context, p *types.Project, s types.ServiceConfig, pr *progress) error {
	for dep, d := range s.DependsOn {
		if _, ok := p.Services[dep]; !ok {
			if d.Required {
				return fmt.Errorf("service %s depends on %s, which is not enabled", s.Name, dep)
			}
			continue
		}
		cts, err := c.listContainers(ctx, p.Name, false, dep)
		if err != nil {
			return err
		}
		for _, ct := range cts {
			switch d.Condition {
			case types.ServiceConditionHealthy:
				pr.event("Container", name(ct), "Waiting")
				if err := c.waitHealthy(ctx, ct.ID, name(ct)); err != nil {
					pr.event("Container", name(ct), "Error")
					return fmt.Errorf("dependency failed to start: %w", err)
				}
				pr.event("Container", name(ct), "Healthy")
			case types.ServiceConditionCompletedSuccessfully:
				pr.event("Container", name(ct), "Waiting")
				code, err := c.waitExit(ctx, ct.ID)
				if err != nil {
					return err
				}
				if code != 0 {
					pr.event("Container", name(ct), "Error")
					return fmt.Errorf("service %q didn't complete successfully: exit %d", dep, code)
				}
				pr.event("Container", name(ct), "Exited")
			}
		}
	}
	return nil
}

var errNoHealth = errors.New("has no healthcheck configured")

// waitHealthy polls a container's health until healthy; unhealthy, exited
// or health-less containers are errors.
func (c *Service) waitHealthy(ctx context.Context, id, name string) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		res, err := c.API.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect %s: %w", name, err)
		}
		st := res.Container.State
		switch {
		case st == nil:
			return fmt.Errorf("container %s: no state", name)
		case st.Health == nil:
			if res.Container.Config != nil && res.Container.Config.Healthcheck != nil &&
				len(res.Container.Config.Healthcheck.Test) > 0 && res.Container.Config.Healthcheck.Test[0] != "NONE" {
				// configured but the daemon reports no health: it lacks health checks
				return fmt.Errorf("container %s: the daemon reports no health status (health checks not supported?)", name)
			}
			return fmt.Errorf("container %s %w", name, errNoHealth)
		case st.Health.Status == container.Healthy:
			return nil
		case st.Health.Status == container.Unhealthy:
			return fmt.Errorf("container %s is unhealthy", name)
		case !st.Running && !st.Restarting:
			return fmt.Errorf("container %s exited (%d)", name, st.ExitCode)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to be healthy: %w", name, ctx.Err())
		case <-tick.C:
		}
	}
}

func (c *Service) waitExit(ctx context.Context, id string) (int64, error) {
	w := c.API.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-w.Result:
		return r.StatusCode, nil
	case err := <-w.Error:
		return 0, fmt.Errorf("wait for %s: %w", id, err)
	}
}

// waitProject implements --wait: every container running, and healthy
// when it has a health check.
func (c *Service) waitProject(ctx context.Context, p *types.Project, pr *progress) error {
	for _, svc := range p.ServiceNames() {
		cts, err := c.listContainers(ctx, p.Name, false, svc)
		if err != nil {
			return err
		}
		for _, ct := range cts {
			pr.event("Container", name(ct), "Waiting")
			err := c.waitHealthy(ctx, ct.ID, name(ct))
			if errors.Is(err, errNoHealth) {
				var state string
				state, err = c.waitRunning(ctx, ct.ID, name(ct))
				if err == nil {
					pr.event("Container", name(ct), state)
					continue
				}
			}
			if err != nil {
				pr.event("Container", name(ct), "Error")
				return err
			}
			pr.event("Container", name(ct), "Healthy")
		}
	}
	return nil
}

// waitRunning checks a container without health check is up (a one-shot
// that exited 0 and that others depend on is fine too).
func (c *Service) waitRunning(ctx context.Context, id, name string) (string, error) {
	res, err := c.API.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", name, err)
	}
	st := res.Container.State
	if st != nil && (st.Running || st.Restarting) {
		return "Running", nil
	}
	if st != nil && st.ExitCode == 0 {
		return "Exited", nil
	}
	code := 0
	if st != nil {
		code = st.ExitCode
	}
	return "", fmt.Errorf("container %s exited (%d)", name, code)
}
