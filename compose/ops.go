package compose

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Ps lists the project's containers (running only unless all), one-offs
// excluded.
func (c *Service) Ps(ctx context.Context, project string, services []string, all bool) ([]container.Summary, error) {
	cts, err := c.listContainers(ctx, project, false, services...)
	if err != nil || all {
		return cts, err
	}
	var out []container.Summary
	for _, ct := range cts {
		if ct.State == container.StateRunning || ct.State == container.StateRestarting || ct.State == container.StatePaused {
			out = append(out, ct)
		}
	}
	return out, nil
}

// Start starts the project's existing containers, dependencies first.
func (c *Service) Start(ctx context.Context, p *types.Project, services []string) error {
	names, err := selectServices(p, services)
	if err != nil {
		return err
	}
	pr := c.progress()
	for _, svc := range inOrder(p, names, false) {
		cts, err := c.listContainers(ctx, p.Name, false, svc)
		if err != nil {
			return err
		}
		if len(cts) == 0 {
			return fmt.Errorf("service %q has no container to start", svc)
		}
		for _, ct := range cts {
			if ct.State == container.StateRunning {
				continue
			}
			if err := c.startContainer(ctx, ct.ID, name(ct), pr); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stop stops the project's containers, dependents first.
func (c *Service) Stop(ctx context.Context, p *types.Project, services []string, timeout *int) error {
	names, err := selectServices(p, services)
	if err != nil {
		return err
	}
	pr := c.progress()
	for _, svc := range inOrder(p, names, true) {
		cts, err := c.listContainers(ctx, p.Name, false, svc)
		if err != nil {
			return err
		}
		t := timeout
		if t == nil {
			t = stopTimeout(p.Services[svc])
		}
		for _, ct := range cts {
			if ct.State != container.StateRunning && ct.State != container.StateRestarting && ct.State != container.StatePaused {
				continue
			}
			pr.event("Container", name(ct), "Stopping")
			if _, err := c.API.ContainerStop(ctx, ct.ID, client.ContainerStopOptions{Timeout: t}); err != nil {
				return fmt.Errorf("stop %s: %w", name(ct), err)
			}
			pr.event("Container", name(ct), "Stopped")
		}
	}
	return nil
}

// Restart restarts the project's containers, dependencies first.
func (c *Service) Restart(ctx context.Context, p *types.Project, services []string, timeout *int) error {
	names, err := selectServices(p, services)
	if err != nil {
		return err
	}
	pr := c.progress()
	for _, svc := range inOrder(p, names, false) {
		cts, err := c.listContainers(ctx, p.Name, false, svc)
		if err != nil {
			return err
		}
		t := timeout
		if t == nil {
			t = stopTimeout(p.Services[svc])
		}
		for _, ct := range cts {
			pr.event("Container", name(ct), "Restarting")
			if _, err := c.API.ContainerRestart(ctx, ct.ID, client.ContainerRestartOptions{Timeout: t}); err != nil {
				return fmt.Errorf("restart %s: %w", name(ct), err)
			}
			pr.event("Container", name(ct), "Started")
		}
	}
	return nil
}

// inOrder sorts names so dependencies come first (or last when reverse).
func inOrder(p *types.Project, names []string, reverse bool) []string {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for dep := range p.Services[n].DependsOn {
			if _, ok := p.Services[dep]; ok {
				visit(dep)
			}
		}
		if want[n] {
			out = append(out, n)
		}
	}
	for _, n := range p.ServiceNames() {
		visit(n)
	}
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// LogsOptions are `compose logs`' flags.
type LogsOptions struct {
	Services   []string
	Follow     bool
	Tail       string
	Timestamps bool
	NoPrefix   bool
}

// Logs prints the project's container logs, each line prefixed with the
// container's service-number name as docker compose does.
func (c *Service) Logs(ctx context.Context, project string, o LogsOptions) error {
	cts, err := c.listContainers(ctx, project, false, o.Services...)
	if err != nil {
		return err
	}
	width := 0
	for _, ct := range cts {
		width = max(width, len(shortName(project, ct)))
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(cts))
	for _, ct := range cts {
		prefix := ""
		if !o.NoPrefix {
			prefix = fmt.Sprintf("%-*s | ", width+1, shortName(project, ct))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.containerLogs(ctx, ct, o, &lineWriter{mu: &mu, out: c.Out, prefix: prefix})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// shortName is <service>-<n>, the name docker compose prints in logs.
func shortName(project string, ct container.Summary) string {
	return strings.TrimPrefix(name(ct), project+"-")
}

func (c *Service) containerLogs(ctx context.Context, ct container.Summary, o LogsOptions, w *lineWriter) error {
	res, err := c.API.ContainerInspect(ctx, ct.ID, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect %s: %w", name(ct), err)
	}
	tail := o.Tail
	if tail == "" {
		tail = "all"
	}
	rc, err := c.API.ContainerLogs(ctx, ct.ID, client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Follow: o.Follow, Tail: tail, Timestamps: o.Timestamps,
	})
	if err != nil {
		return fmt.Errorf("logs of %s: %w", name(ct), err)
	}
	defer rc.Close()
	if res.Container.Config != nil && res.Container.Config.Tty {
		_, err = io.Copy(w, rc)
	} else {
		_, err = stdcopy.StdCopy(w, w, rc)
	}
	w.flush()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of %s: %w", name(ct), err)
	}
	return nil
}

// lineWriter prefixes whole lines and writes them under a shared lock so
// lines of different containers never interleave.
type lineWriter struct {
	mu     *sync.Mutex
	out    io.Writer
	prefix string
	buf    []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		w.mu.Lock()
		fmt.Fprintf(w.out, "%s%s\n", w.prefix, w.buf[:i])
		w.mu.Unlock()
		w.buf = w.buf[i+1:]
	}
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.mu.Lock()
		fmt.Fprintf(w.out, "%s%s\n", w.prefix, w.buf)
		w.mu.Unlock()
		w.buf = nil
	}
}

// ExecOptions are `compose exec`'s flags.
type ExecOptions struct {
	Service    string
	Index      int
	Cmd        []string
	User       string
	WorkingDir string
	Env        []string
	Privileged bool
	Detach     bool
	In         io.Reader // nil: no stdin
}

// Exec runs a command in a service's container and returns its exit code.
func (c *Service) Exec(ctx context.Context, project string, o ExecOptions) (int, error) {
	cts, err := c.listContainers(ctx, project, false, o.Service)
	if err != nil {
		return 0, err
	}
	idx := o.Index
	if idx == 0 {
		idx = 1
	}
	var target *container.Summary
	for i := range cts {
		if number(cts[i]) == idx && cts[i].State == container.StateRunning {
			target = &cts[i]
		}
	}
	if target == nil {
		return 0, fmt.Errorf("service %q is not running", o.Service)
	}
	ex, err := c.API.ExecCreate(ctx, target.ID, client.ExecCreateOptions{
		Cmd: o.Cmd, User: o.User, WorkingDir: o.WorkingDir, Env: o.Env, Privileged: o.Privileged,
		AttachStdin: o.In != nil && !o.Detach, AttachStdout: !o.Detach, AttachStderr: !o.Detach,
	})
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", name(*target), missing(err, "exec"))
	}
	if o.Detach {
		_, err := c.API.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true})
		return 0, err
	}
	att, err := c.API.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", name(*target), err)
	}
	defer att.Close()
	if o.In != nil {
		go func() {
			io.Copy(att.Conn, o.In)
			att.CloseWrite()
		}()
	}
	errw := c.Err
	if errw == nil {
		errw = io.Discard
	}
	if _, err := stdcopy.StdCopy(c.Out, errw, att.Reader); err != nil {
		return 0, fmt.Errorf("exec output: %w", err)
	}
	res, err := c.API.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		return 0, err
	}
	return res.ExitCode, nil
}

// RunOptions are `compose run`'s flags.
type RunOptions struct {
	Service    string
	Cmd        []string
	Entrypoint []string
	Env        []string
	Name       string
	User       string
	WorkingDir string
	Remove     bool
	Detach     bool
	NoDeps     bool
	Labels     map[string]string
	In         io.Reader
}

// Run starts a one-off container of a service (after its dependencies) and,
// unless detached, streams its output and returns its exit code.
func (c *Service) Run(ctx context.Context, p *types.Project, o RunOptions) (int, error) {
	s, ok := p.Services[o.Service]
	if !ok {
		return 0, fmt.Errorf("no such service: %s", o.Service)
	}
	if !o.NoDeps {
		var deps []string
		for d := range s.DependsOn {
			deps = append(deps, d)
		}
		if len(deps) > 0 {
			if err := c.Up(ctx, p, UpOptions{Services: deps, NoRecreate: true}); err != nil {
				return 0, err
			}
		}
	}
	if err := c.ensureImages(ctx, p.WithServicesDisabled(otherServices(p, o.Service)...), false, false, c.progress()); err != nil {
		return 0, err
	}
	if err := c.ensureNetworks(ctx, p, nil); err != nil {
		return 0, err
	}
	if err := c.ensureVolumes(ctx, p, nil); err != nil {
		return 0, err
	}
	if len(o.Cmd) > 0 {
		s.Command = o.Cmd
	}
	if o.Entrypoint != nil {
		s.Entrypoint = o.Entrypoint
	}
	if o.User != "" {
		s.User = o.User
	}
	if o.WorkingDir != "" {
		s.WorkingDir = o.WorkingDir
	}
	s.Ports = nil // run does not publish the service's ports
	s.ContainerName = o.Name
	if s.ContainerName == "" {
		var b [6]byte
		rand.Read(b[:])
		s.ContainerName = fmt.Sprintf("%s-%s-run-%s", p.Name, s.Name, hex.EncodeToString(b[:]))
	}
	s.Environment = s.Environment.OverrideBy(types.NewMappingWithEquals(o.Env))
	s.Labels = s.Labels.Add(LabelOneoff, "True")
	for k, v := range o.Labels {
		s.Labels = s.Labels.Add(k, v)
	}
	hash, _ := ConfigHash(s)
	opts, err := c.createOptions(p, s, 1, hash, c.imageID(ctx, imageName(p, s)), true)
	if err != nil {
		return 0, err
	}
	opts.Config.AttachStdout = !o.Detach
	opts.Config.AttachStderr = !o.Detach
	opts.Config.AttachStdin = o.In != nil && !o.Detach
	opts.Config.OpenStdin = opts.Config.AttachStdin
	opts.Config.StdinOnce = opts.Config.AttachStdin
	opts.HostConfig.AutoRemove = o.Remove && o.Detach
	created, err := c.API.ContainerCreate(ctx, opts)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", opts.Name, err)
	}
	if o.Detach {
		if _, err := c.API.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
			return 0, fmt.Errorf("start %s: %w", opts.Name, err)
		}
		fmt.Fprintln(c.Out, opts.Name)
		return 0, nil
	}
	if o.Remove {
		defer c.API.ContainerRemove(context.WithoutCancel(ctx), created.ID, client.ContainerRemoveOptions{Force: true})
	}
	att, err := c.API.ContainerAttach(ctx, created.ID, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true, Stdin: opts.Config.AttachStdin})
	if err != nil {
		return 0, fmt.Errorf("attach %s: %w", opts.Name, err)
	}
	defer att.Close()
	wait := c.API.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := c.API.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return 0, fmt.Errorf("start %s: %w", opts.Name, err)
	}
	if o.In != nil {
		go func() {
			io.Copy(att.Conn, o.In)
			att.CloseWrite()
		}()
	}
	errw := c.Err
	if errw == nil {
		errw = io.Discard
	}
	if opts.Config.Tty {
		io.Copy(c.Out, att.Reader)
	} else {
		stdcopy.StdCopy(c.Out, errw, att.Reader)
	}
	select {
	case r := <-wait.Result:
		return int(r.StatusCode), nil
	case err := <-wait.Error:
		return 0, fmt.Errorf("wait for %s: %w", opts.Name, err)
	}
}

func otherServices(p *types.Project, keep string) []string {
	var out []string
	for _, n := range p.ServiceNames() {
		if n != keep {
			out = append(out, n)
		}
	}
	return out
}

// TopResult is one container's processes.
type TopResult struct {
	Name string
	client.ContainerTopResult
}

// Top lists the processes of the project's running containers.
func (c *Service) Top(ctx context.Context, project string, services []string) ([]TopResult, error) {
	cts, err := c.Ps(ctx, project, services, false)
	if err != nil {
		return nil, err
	}
	var out []TopResult
	for _, ct := range cts {
		res, err := c.API.ContainerTop(ctx, ct.ID, client.ContainerTopOptions{})
		if err != nil {
			return nil, fmt.Errorf("top %s: %w", name(ct), missing(err, "top"))
		}
		out = append(out, TopResult{Name: name(ct), ContainerTopResult: res})
	}
	return out, nil
}

// ImageInfo is one row of `compose images`.
type ImageInfo struct {
	Container, Repository, Tag, ID string
	Size                           int64
}

// Images lists the images the project's containers use.
func (c *Service) Images(ctx context.Context, project string, services []string) ([]ImageInfo, error) {
	cts, err := c.listContainers(ctx, project, false, services...)
	if err != nil {
		return nil, err
	}
	var out []ImageInfo
	for _, ct := range cts {
		info := ImageInfo{Container: name(ct), ID: ct.ImageID}
		repo, tag := ct.Image, "latest"
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo, tag = repo[:i], repo[i+1:]
		}
		info.Repository, info.Tag = repo, tag
		if res, err := c.API.ImageInspect(ctx, ct.ImageID); err == nil {
			info.Size = res.Size
			info.ID = res.ID
		}
		out = append(out, info)
	}
	return out, nil
}

// Events streams the project's container events to fn until ctx ends.
func (c *Service) Events(ctx context.Context, project string, services []string, fn func(events.Message) error) error {
	res := c.API.Events(ctx, client.EventsListOptions{Filters: client.Filters{}.Add("label", LabelProject+"="+project)})
	for {
		select {
		case m := <-res.Messages:
			if m.Actor.Attributes[LabelProject] != project {
				continue
			}
			if len(services) > 0 && !contains(services, m.Actor.Attributes[LabelService]) {
				continue
			}
			if err := fn(m); err != nil {
				return err
			}
		case err := <-res.Err:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-ctx.Done():
			return nil
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Remove removes the project's stopped containers (`compose rm`).
func (c *Service) Remove(ctx context.Context, p *types.Project, services []string, volumes bool) error {
	cts, err := c.listContainers(ctx, p.Name, false, services...)
	if err != nil {
		return err
	}
	pr := c.progress()
	for _, ct := range cts {
		if ct.State == container.StateRunning || ct.State == container.StateRestarting {
			continue
		}
		pr.event("Container", name(ct), "Removing")
		if _, err := c.API.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{RemoveVolumes: volumes}); err != nil {
			return fmt.Errorf("remove %s: %w", name(ct), err)
		}
		pr.event("Container", name(ct), "Removed")
	}
	return nil
}
