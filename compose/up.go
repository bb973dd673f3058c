package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/build/buildcontext"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
)

// Compose drives one engine for compose projects. Out gets the progress
// lines, as `docker compose` prints them without a terminal.
type Compose struct {
	Engine *client.Client
	Out    io.Writer
	mu     sync.Mutex
}

func (c *Compose) event(kind, name, status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	mark := "✔"
	if strings.HasSuffix(status, "ing") {
		mark = " "
	}
	fmt.Fprintf(c.Out, " %s %s %s  %s\n", mark, kind, name, status)
}

// UpOptions are `compose up`'s flags.
type UpOptions struct {
	Services      []string
	Build         bool
	ForceRecreate bool
	NoRecreate    bool
	RemoveOrphans bool
	Scale         map[string]int
	Wait          bool
	WaitTimeout   time.Duration
}

// projectContainers lists the project's containers (service ones, not
// one-off runs), optionally of some services.
func (c *Compose) projectContainers(ctx context.Context, p string, all bool, services ...string) ([]container.Summary, error) {
	f := make(client.Filters).Add("label", LabelProject+"="+p)
	res, err := c.Engine.ContainerList(ctx, client.ContainerListOptions{All: all, Filters: f})
	if err != nil {
		return nil, err
	}
	var out []container.Summary
	for _, s := range res.Items {
		if s.Labels[LabelOneoff] == "True" {
			continue
		}
		if len(services) > 0 && !contains(services, s.Labels[LabelService]) {
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Names[0] < out[j].Names[0] })
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Prepare creates the project's networks and volumes.
func (c *Compose) Prepare(ctx context.Context, p *types.Project) error {
	if err := c.createNetworks(ctx, p); err != nil {
		return err
	}
	return c.createVolumes(ctx, p)
}

// Up creates and starts the project's services (and networks, volumes,
// images), recreating only the containers whose configuration changed.
func (c *Compose) Up(ctx context.Context, p *types.Project, o UpOptions) error {
	for _, s := range o.Services {
		if _, ok := p.Services[s]; !ok {
			return fmt.Errorf("no such service: %s", s)
		}
	}
	if err := c.Prepare(ctx, p); err != nil {
		return err
	}
	names := order(p, o.Services)
	if err := c.ensureImages(ctx, p, names, o.Build); err != nil {
		return err
	}
	for _, name := range names {
		s := p.Services[name]
		if err := c.waitDependencies(ctx, p, s); err != nil {
			return err
		}
		n := scale(s)
		if v, ok := o.Scale[name]; ok {
			n = v
		}
		if err := c.converge(ctx, p, s, n, o); err != nil {
			return err
		}
	}
	if err := c.orphans(ctx, p, o.RemoveOrphans); err != nil {
		return err
	}
	if o.Wait {
		return c.waitRunning(ctx, p, names, o.WaitTimeout)
	}
	return nil
}

// usedNetworks are the network keys the services attach to.
func usedNetworks(p *types.Project) []string {
	seen := map[string]bool{}
	for _, s := range p.Services {
		if s.NetworkMode != "" {
			continue
		}
		if len(s.Networks) == 0 {
			seen["default"] = true
		}
		for k := range s.Networks {
			seen[k] = true
		}
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (c *Compose) createNetworks(ctx context.Context, p *types.Project) error {
	for _, key := range usedNetworks(p) {
		cfg := p.Networks[key]
		name := networkName(p, key)
		existing, err := c.Engine.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("name", name)})
		if err != nil {
			return err
		}
		found := false
		for _, n := range existing.Items {
			if n.Name == name {
				found = true
			}
		}
		if bool(cfg.External) {
			if !found {
				return fmt.Errorf("network %s declared as external, but could not be found", name)
			}
			continue
		}
		if found {
			continue
		}
		labels := map[string]string{LabelProject: p.Name, LabelNetwork: key, LabelVersion: Version}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		opts := client.NetworkCreateOptions{Driver: cfg.Driver, Options: cfg.DriverOpts, Labels: labels, Internal: cfg.Internal, Attachable: cfg.Attachable}
		if len(cfg.Ipam.Config) > 0 {
			ipam := &network.IPAM{Driver: cfg.Ipam.Driver}
			for _, pc := range cfg.Ipam.Config {
				ic := network.IPAMConfig{}
				if pc.Subnet != "" {
					if ic.Subnet, err = parsePrefix(pc.Subnet); err != nil {
						return fmt.Errorf("network %s: %w", key, err)
					}
				}
				if pc.Gateway != "" {
					if ic.Gateway, err = parseAddr(pc.Gateway); err != nil {
						return fmt.Errorf("network %s: %w", key, err)
					}
				}
				ipam.Config = append(ipam.Config, ic)
			}
			opts.IPAM = ipam
		}
		c.event("Network", name, "Creating")
		if _, err := c.Engine.NetworkCreate(ctx, name, opts); err != nil {
			return fmt.Errorf("network %s: %w", name, err)
		}
		c.event("Network", name, "Created")
	}
	return nil
}

func (c *Compose) createVolumes(ctx context.Context, p *types.Project) error {
	keys := make([]string, 0, len(p.Volumes))
	for k := range p.Volumes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		cfg := p.Volumes[key]
		name := volumeName(p, key)
		_, err := c.Engine.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
		if bool(cfg.External) {
			if err != nil {
				return fmt.Errorf("external volume %q not found", name)
			}
			continue
		}
		if err == nil {
			continue
		}
		labels := map[string]string{LabelProject: p.Name, LabelVolume: key, LabelVersion: Version}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		c.event("Volume", name, "Creating")
		if _, err := c.Engine.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Driver: cfg.Driver, DriverOpts: cfg.DriverOpts, Labels: labels}); err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
		c.event("Volume", name, "Created")
	}
	return nil
}

// ensureImages builds (with build sections, when asked or missing) or
// pulls (when missing) the services' images.
func (c *Compose) ensureImages(ctx context.Context, p *types.Project, names []string, rebuild bool) error {
	for _, name := range names {
		s := p.Services[name]
		img := imageName(p, s)
		_, err := c.Engine.ImageInspect(ctx, img)
		switch {
		case s.Build != nil && (rebuild || err != nil):
			if err := c.Build(ctx, p, s); err != nil {
				return err
			}
		case err != nil:
			if err := c.pull(ctx, img); err != nil {
				return fmt.Errorf("service %s: pull %s: %w", name, img, err)
			}
		}
	}
	return nil
}

func (c *Compose) pull(ctx context.Context, img string) error {
	c.event("Image", img, "Pulling")
	rc, err := c.Engine.ImagePull(ctx, img, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil); err != nil {
		return err
	}
	c.event("Image", img, "Pulled")
	return nil
}

// Build builds a service's image from its build section.
func (c *Compose) Build(ctx context.Context, p *types.Project, s types.ServiceConfig) error {
	b := s.Build
	dir := b.Context
	if dir == "" {
		dir = "."
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(p.WorkingDir, dir)
	}
	dockerfile := b.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	excludes, err := buildcontext.ReadIgnore(dir)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(buildcontext.Write(pw, dir, buildcontext.Options{Excludes: excludes, Keep: []string{dockerfile, ".dockerignore"}}))
	}()
	img := imageName(p, s)
	args := map[string]*string{}
	for k, v := range b.Args {
		args[k] = v
	}
	labels := map[string]string{LabelProject: p.Name, LabelService: s.Name}
	for k, v := range b.Labels {
		labels[k] = v
	}
	c.event("Service", s.Name, "Building")
	res, err := c.Engine.ImageBuild(ctx, pr, client.ImageBuildOptions{Tags: append([]string{img}, b.Tags...), Dockerfile: dockerfile, BuildArgs: args, Target: b.Target, Labels: labels, NoCache: b.NoCache, Remove: true})
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("service %s: build: %w", s.Name, err)
	}
	defer res.Body.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(res.Body, io.Discard, 0, false, nil); err != nil {
		return fmt.Errorf("service %s: build: %w", s.Name, err)
	}
	c.event("Service", s.Name, "Built")
	return nil
}

// waitDependencies blocks until s's dependencies meet their conditions.
func (c *Compose) waitDependencies(ctx context.Context, p *types.Project, s types.ServiceConfig) error {
	deps := make([]string, 0, len(s.DependsOn))
	for d := range s.DependsOn {
		deps = append(deps, d)
	}
	sort.Strings(deps)
	for _, d := range deps {
		cond := s.DependsOn[d].Condition
		if cond == "" || cond == types.ServiceConditionStarted {
			continue
		}
		if _, ok := p.Services[d]; !ok {
			continue
		}
		cs, err := c.projectContainers(ctx, p.Name, true, d)
		if err != nil {
			return err
		}
		for _, ct := range cs {
			name := strings.TrimPrefix(ct.Names[0], "/")
			c.event("Container", name, "Waiting")
			if err := c.waitCondition(ctx, ct.ID, cond); err != nil {
				return fmt.Errorf("dependency failed to start: container %s %w", name, err)
			}
			if cond == types.ServiceConditionHealthy {
				c.event("Container", name, "Healthy")
			} else {
				c.event("Container", name, "Exited")
			}
		}
	}
	return nil
}

func (c *Compose) waitCondition(ctx context.Context, id, cond string) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		res, err := c.Engine.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return err
		}
		st := res.Container.State
		switch cond {
		case types.ServiceConditionHealthy:
			if st.Health == nil {
				return errors.New("has no healthcheck configured")
			}
			switch st.Health.Status {
			case container.Healthy:
				return nil
			case container.Unhealthy:
				return errors.New("is unhealthy")
			}
			if !st.Running {
				return fmt.Errorf("exited (%d)", st.ExitCode)
			}
		case types.ServiceConditionCompletedSuccessfully:
			if !st.Running && st.Status == container.StateExited {
				if st.ExitCode != 0 {
					return fmt.Errorf("exited (%d)", st.ExitCode)
				}
				return nil
			}
		default:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("timed out")
}

// converge makes the service's containers match its configuration.
func (c *Compose) converge(ctx context.Context, p *types.Project, s types.ServiceConfig, want int, o UpOptions) error {
	img := imageName(p, s)
	ii, err := c.Engine.ImageInspect(ctx, img)
	if err != nil {
		return fmt.Errorf("service %s: image %s: %w", s.Name, img, err)
	}
	hash := ConfigHash(s, ii.ID)
	existing, err := c.projectContainers(ctx, p.Name, true, s.Name)
	if err != nil {
		return err
	}
	byNumber := map[int]container.Summary{}
	for _, ct := range existing {
		n, _ := strconv.Atoi(ct.Labels[LabelNumber])
		if n > want || n == 0 {
			if err := c.removeContainer(ctx, ct, false); err != nil {
				return err
			}
			continue
		}
		byNumber[n] = ct
	}
	for n := 1; n <= want; n++ {
		name := containerName(p, s, n)
		ct, ok := byNumber[n]
		if ok && (o.NoRecreate || (ct.Labels[LabelConfigHash] == hash && !o.ForceRecreate)) {
			if ct.State != container.StateRunning {
				c.event("Container", name, "Starting")
				if _, err := c.Engine.ContainerStart(ctx, ct.ID, client.ContainerStartOptions{}); err != nil {
					return fmt.Errorf("start %s: %w", name, err)
				}
				c.event("Container", name, "Started")
			} else {
				c.event("Container", name, "Running")
			}
			continue
		}
		status := "Created"
		if ok {
			c.event("Container", name, "Recreate")
			if err := c.removeContainer(ctx, ct, true); err != nil {
				return err
			}
			status = "Recreated"
		} else {
			c.event("Container", name, "Creating")
		}
		cfg, hc, nc, err := createRequest(p, s, n, hash)
		if err != nil {
			return err
		}
		res, err := c.Engine.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc, NetworkingConfig: nc, Name: name})
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		c.event("Container", name, status)
		c.event("Container", name, "Starting")
		if _, err := c.Engine.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		c.event("Container", name, "Started")
	}
	return nil
}

// removeContainer stops and removes one container.
func (c *Compose) removeContainer(ctx context.Context, ct container.Summary, quiet bool) error {
	name := strings.TrimPrefix(ct.Names[0], "/")
	if ct.State == container.StateRunning || ct.State == container.StatePaused || ct.State == container.StateRestarting {
		if !quiet {
			c.event("Container", name, "Stopping")
		}
		if _, err := c.Engine.ContainerStop(ctx, ct.ID, client.ContainerStopOptions{}); err != nil {
			return fmt.Errorf("stop %s: %w", name, err)
		}
		if !quiet {
			c.event("Container", name, "Stopped")
		}
	}
	if !quiet {
		c.event("Container", name, "Removing")
	}
	if _, err := c.Engine.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if !quiet {
		c.event("Container", name, "Removed")
	}
	return nil
}

// orphans warns about (or removes) containers of services the project no
// longer has.
func (c *Compose) orphans(ctx context.Context, p *types.Project, remove bool) error {
	cs, err := c.projectContainers(ctx, p.Name, true)
	if err != nil {
		return err
	}
	for _, ct := range cs {
		if _, ok := p.Services[ct.Labels[LabelService]]; ok {
			continue
		}
		if remove {
			if err := c.removeContainer(ctx, ct, false); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(os.Stderr, "WARN[0000] Found orphan containers (%s) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.\n", strings.TrimPrefix(ct.Names[0], "/"))
	}
	return nil
}

// waitRunning is up --wait: every container running, and healthy when it
// has a health check.
func (c *Compose) waitRunning(ctx context.Context, p *types.Project, names []string, timeout time.Duration) error {
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	cs, err := c.projectContainers(ctx, p.Name, true, names...)
	if err != nil {
		return err
	}
	for _, ct := range cs {
		name := strings.TrimPrefix(ct.Names[0], "/")
		c.event("Container", name, "Waiting")
		for {
			res, err := c.Engine.ContainerInspect(ctx, ct.ID, client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			st := res.Container.State
			if !st.Running {
				if st.Status == container.StateExited && st.ExitCode == 0 {
					break // a one-shot service that completed
				}
				return fmt.Errorf("container %s exited (%d)", name, st.ExitCode)
			}
			if st.Health == nil || st.Health.Status == container.Healthy {
				break
			}
			if st.Health.Status == container.Unhealthy {
				return fmt.Errorf("container %s is unhealthy", name)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("timeout waiting for %s", name)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		c.event("Container", name, "Healthy")
	}
	return nil
}

// DownOptions are `compose down`'s flags.
type DownOptions struct {
	Volumes       bool
	RemoveOrphans bool
	RMI           string // "", "local", "all"
}

// Down stops and removes the project's containers and networks, and with
// Volumes its volumes.
func (c *Compose) Down(ctx context.Context, p *types.Project, o DownOptions) error {
	cs, err := c.projectContainers(ctx, p.Name, true)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, ct := range cs {
		if _, ok := p.Services[ct.Labels[LabelService]]; !ok && !o.RemoveOrphans {
			continue
		}
		wg.Add(1)
		go func(i int, ct container.Summary) {
			defer wg.Done()
			errs[i] = c.removeContainer(ctx, ct, false)
		}(i, ct)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	nets, err := c.Engine.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", LabelProject+"="+p.Name)})
	if err != nil {
		return err
	}
	for _, n := range nets.Items {
		c.event("Network", n.Name, "Removing")
		if _, err := c.Engine.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
			return fmt.Errorf("network %s: %w", n.Name, err)
		}
		c.event("Network", n.Name, "Removed")
	}
	if o.Volumes {
		for key, v := range p.Volumes {
			if bool(v.External) {
				continue
			}
			name := volumeName(p, key)
			if _, err := c.Engine.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err != nil {
				continue
			}
			c.event("Volume", name, "Removing")
			if _, err := c.Engine.VolumeRemove(ctx, name, client.VolumeRemoveOptions{}); err != nil {
				return fmt.Errorf("volume %s: %w", name, err)
			}
			c.event("Volume", name, "Removed")
		}
	}
	if o.RMI != "" {
		for _, s := range p.Services {
			if o.RMI == "local" && s.Image != "" {
				continue
			}
			img := imageName(p, s)
			if _, err := c.Engine.ImageRemove(ctx, img, client.ImageRemoveOptions{}); err == nil {
				c.event("Image", img, "Removed")
			}
		}
	}
	return nil
}

// RunOneOff creates and starts a one-off container of s (compose run),
// with command (the service's when empty) and extra environment.
func (c *Compose) RunOneOff(ctx context.Context, p *types.Project, s types.ServiceConfig, command, env []string) (string, error) {
	if err := c.ensureImages(ctx, p, []string{s.Name}, false); err != nil {
		return "", err
	}
	cfg, hc, nc, err := createRequest(p, s, 1, "")
	if err != nil {
		return "", err
	}
	if len(command) > 0 {
		cfg.Cmd = command
	}
	cfg.Env = append(cfg.Env, env...)
	cfg.Labels[LabelOneoff] = "True"
	delete(cfg.Labels, LabelNumber)
	hc.PortBindings = nil // one-off runs publish nothing, as in Compose
	hc.RestartPolicy = container.RestartPolicy{}
	name := fmt.Sprintf("%s-%s-run-%d", p.Name, s.Name, time.Now().UnixNano()%1_000_000_000)
	res, err := c.Engine.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc, NetworkingConfig: nc, Name: name})
	if err != nil {
		return "", err
	}
	if _, err := c.Engine.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return "", err
	}
	return res.ID, nil
}
