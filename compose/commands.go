package compose

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Start starts the services' existing containers, dependencies first.
func (c *Compose) Start(ctx context.Context, p *types.Project, services []string) error {
	names, err := selectServices(p, services)
	if err != nil {
		return err
	}
	order, err := startOrder(p, names)
	if err != nil {
		return err
	}
	for _, n := range order {
		if err := c.waitDependencies(ctx, p, p.Services[n]); err != nil {
			return err
		}
		cts, err := c.containers(ctx, p.Name, true, ptr(false), n)
		if err != nil {
			return err
		}
		for _, ct := range cts {
			if ct.State == container.StateRunning {
				continue
			}
			if err := c.start(ctx, ct.ID, containerName(ct)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stop stops the services' containers, dependents first.
func (c *Compose) Stop(ctx context.Context, p *types.Project, services []string, timeout *int) error {
	names, err := selectServices(p, services)
	if err != nil {
		return err
	}
	order, err := startOrder(p, names)
	if err != nil {
		return err
	}
	for _, n := range reverse(order) {
		if len(services) > 0 && !contains(services, n) {
			continue
		}
		cts, err := c.containers(ctx, p.Name, false, ptr(false), n)
		if err != nil {
			return err
		}
		for _, ct := range cts {
			name := containerName(ct)
			c.prog.event("Container", name, "Stopping")
			if _, err := c.API.ContainerStop(ctx, ct.ID, client.ContainerStopOptions{Timeout: timeout}); err != nil {
				return fmt.Errorf("stop container %s: %w", name, err)
			}
			c.prog.event("Container", name, "Stopped")
		}
	}
	return nil
}

// Restart restarts the services' containers.
func (c *Compose) Restart(ctx context.Context, p *types.Project, services []string, timeout *int) error {
	names, err := selectServices(p, services)
	if err != nil {
		return err
	}
	cts, err := c.containers(ctx, p.Name, true, ptr(false), names...)
	if err != nil {
		return err
	}
	for _, ct := range cts {
		name := containerName(ct)
		c.prog.event("Container", name, "Restarting")
		if _, err := c.API.ContainerRestart(ctx, ct.ID, client.ContainerRestartOptions{Timeout: timeout}); err != nil {
			return fmt.Errorf("restart container %s: %w", name, err)
		}
		c.prog.event("Container", name, "Started")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Ps lists the project's containers (running only unless all).
func (c *Compose) Ps(ctx context.Context, project string, services []string, all bool) ([]container.Summary, error) {
	return c.containers(ctx, project, all, nil, services...)
}

// LogOptions are `compose logs`' flags.
type LogOptions struct {
	Services   []string
	Follow     bool
	Tail       string
	Timestamps bool
	NoPrefix   bool
	Since      string
}

// Logs prints each container's output with compose's "name  | " prefix.
func (c *Compose) Logs(ctx context.Context, project string, o LogOptions) error {
	cts, err := c.containers(ctx, project, true, ptr(false), o.Services...)
	if err != nil {
		return err
	}
	width := 0
	for _, ct := range cts {
		width = max(width, len(containerName(ct)))
	}
	out := &lockedWriter{w: c.Out}
	var wg sync.WaitGroup
	errs := make(chan error, len(cts))
	for _, ct := range cts {
		prefix := ""
		if !o.NoPrefix {
			// docker compose v2 pads names to the longest plus one.
			prefix = fmt.Sprintf("%-*s | ", width+1, containerName(ct))
		}
		wg.Add(1)
		go func(ct container.Summary) {
			defer wg.Done()
			errs <- c.containerLogs(ctx, ct, prefix, out, o)
		}(ct)
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

func (c *Compose) containerLogs(ctx context.Context, ct container.Summary, prefix string, out *lockedWriter, o LogOptions) error {
	name := containerName(ct)
	info, err := c.API.ContainerInspect(ctx, ct.ID, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect %s: %w", name, err)
	}
	tail := o.Tail
	if tail == "" {
		tail = "all"
	}
	rc, err := c.API.ContainerLogs(ctx, ct.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: o.Follow, Tail: tail, Timestamps: o.Timestamps, Since: o.Since})
	if err != nil {
		return fmt.Errorf("logs %s: %w", name, err)
	}
	defer rc.Close()
	lw := &linePrefixer{prefix: prefix, out: out}
	if info.Container.Config != nil && info.Container.Config.Tty {
		_, err = io.Copy(lw, rc)
	} else {
		_, err = stdcopy.StdCopy(lw, lw, rc)
	}
	lw.flush()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs %s: %w", name, err)
	}
	return nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// linePrefixer writes whole lines, each with the prefix.
type linePrefixer struct {
	prefix string
	out    *lockedWriter
	buf    []byte
}

func (l *linePrefixer) Write(b []byte) (int, error) {
	l.buf = append(l.buf, b...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		l.out.mu.Lock()
		_, err := fmt.Fprintf(l.out.w, "%s%s\n", l.prefix, l.buf[:i])
		l.out.mu.Unlock()
		l.buf = l.buf[i+1:]
		if err != nil {
			return 0, err
		}
	}
}

func (l *linePrefixer) flush() {
	if len(l.buf) > 0 {
		l.out.mu.Lock()
		fmt.Fprintf(l.out.w, "%s%s\n", l.prefix, l.buf)
		l.out.mu.Unlock()
		l.buf = nil
	}
}

// ExecOptions are `compose exec`'s flags.
type ExecOptions struct {
	Service    string
	Index      int
	Cmd        []string
	User       string
	Env        []string
	WorkingDir string
	Privileged bool
	TTY        bool
	Interact   bool
	Detach     bool
	In         io.Reader
}

// Exec runs a command in a service's container and returns its exit code.
func (c *Compose) Exec(ctx context.Context, p *types.Project, o ExecOptions) (int, error) {
	cts, err := c.containers(ctx, p.Name, false, ptr(false), o.Service)
	if err != nil {
		return 0, err
	}
	idx := o.Index
	if idx == 0 {
		idx = 1
	}
	var target *container.Summary
	for i, ct := range cts {
		if ct.Labels[LabelNumber] == fmt.Sprint(idx) {
			target = &cts[i]
		}
	}
	if target == nil {
		return 0, fmt.Errorf("service %q is not running", o.Service)
	}
	ex, err := c.API.ExecCreate(ctx, target.ID, client.ExecCreateOptions{
		User: o.User, Privileged: o.Privileged, TTY: o.TTY, AttachStdin: o.Interact && !o.Detach,
		AttachStdout: !o.Detach, AttachStderr: !o.Detach, Env: o.Env, WorkingDir: o.WorkingDir, Cmd: o.Cmd,
	})
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", containerName(*target), err)
	}
	if o.Detach {
		_, err := c.API.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true})
		return 0, err
	}
	att, err := c.API.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: o.TTY})
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", containerName(*target), err)
	}
	defer att.Close()
	if err := c.pipe(att.HijackedResponse, o.TTY, o.Interact, o.In); err != nil {
		return 0, err
	}
	info, err := c.API.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		return 0, fmt.Errorf("exec inspect: %w", err)
	}
	return info.ExitCode, nil
}

// pipe copies a hijacked stream to Out/Err (demultiplexed unless tty) and,
// when interactive, In to the stream.
func (c *Compose) pipe(h client.HijackedResponse, tty, interactive bool, in io.Reader) error {
	if interactive && in != nil {
		go func() {
			_, _ = io.Copy(h.Conn, in)
			_ = h.CloseWrite()
		}()
	}
	var err error
	if tty {
		_, err = io.Copy(c.Out, h.Reader)
	} else {
		_, err = stdcopy.StdCopy(c.Out, c.Err, h.Reader)
	}
	if err != nil && err != io.EOF {
		return err
	}
	return nil
}

// RunOptions are `compose run`'s flags.
type RunOptions struct {
	Service     string
	Cmd         []string
	Entrypoint  []string
	Env         []string
	Name        string
	User        string
	WorkingDir  string
	Remove      bool
	Detach      bool
	NoDeps      bool
	TTY         bool
	Interactive bool
	Publish     bool // --service-ports
	In          io.Reader
}

// Run starts a one-off container for a service (after its dependencies)
// and returns its exit code.
func (c *Compose) Run(ctx context.Context, p *types.Project, o RunOptions) (int, error) {
	s, ok := p.Services[o.Service]
	if !ok {
		return 0, fmt.Errorf("no such service: %s", o.Service)
	}
	if !o.NoDeps && len(s.DependsOn) > 0 {
		deps := sortedDeps(s)
		if err := c.Up(ctx, p, UpOptions{Services: deps}); err != nil {
			return 0, err
		}
		if err := c.waitDependencies(ctx, p, s); err != nil {
			return 0, err
		}
	} else {
		for _, k := range usedNetworks(p, []string{s.Name}) {
			if err := c.ensureNetwork(ctx, p, k); err != nil {
				return 0, err
			}
		}
		for _, k := range usedVolumes(p, []string{s.Name}) {
			if err := c.ensureVolume(ctx, p, k); err != nil {
				return 0, err
			}
		}
	}
	if err := c.ensureImages(ctx, p, []string{s.Name}, false, false); err != nil {
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
	if s.Environment == nil {
		s.Environment = types.MappingWithEquals{}
	}
	for _, e := range o.Env {
		k, v, ok := strings.Cut(e, "=")
		if ok {
			s.Environment[k] = &v
		} else {
			s.Environment[k] = nil
		}
	}
	if !o.Publish {
		s.Ports = nil
	}
	s.Tty, s.StdinOpen = o.TTY, o.Interactive
	s.Restart = ""
	s.Deploy = nil
	name := o.Name
	if name == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		name = fmt.Sprintf("%s-%s-run-%s", p.Name, s.Name, hex.EncodeToString(b[:]))
	}
	imageID, _, err := c.imageExists(ctx, ImageName(p, s))
	if err != nil {
		return 0, err
	}
	spec, err := buildContainer(p, s, 1, name, imageID, true)
	if err != nil {
		return 0, err
	}
	spec.Create.Config.AttachStdout, spec.Create.Config.AttachStderr = !o.Detach, !o.Detach
	spec.Create.Config.AttachStdin = o.Interactive && !o.Detach
	spec.Create.Config.StdinOnce = spec.Create.Config.AttachStdin
	spec.Create.HostConfig.AutoRemove = o.Remove && o.Detach
	res, err := c.API.ContainerCreate(ctx, spec.Create)
	if err != nil {
		return 0, fmt.Errorf("create container %s: %w", name, err)
	}
	for net, ep := range spec.MoreNets {
		if _, err := c.API.NetworkConnect(ctx, net, client.NetworkConnectOptions{Container: res.ID, EndpointConfig: ep}); err != nil {
			_, _ = c.API.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true})
			return 0, fmt.Errorf("connect %s to network %s: %w", name, net, err)
		}
	}
	if o.Detach {
		if _, err := c.API.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			return 0, fmt.Errorf("start %s: %w", name, err)
		}
		fmt.Fprintln(c.Out, name)
		return 0, nil
	}
	if o.Remove {
		defer func() {
			_, _ = c.API.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		}()
	}
	att, err := c.API.ContainerAttach(ctx, res.ID, client.ContainerAttachOptions{Stream: true, Stdin: o.Interactive, Stdout: true, Stderr: true})
	if err != nil {
		return 0, fmt.Errorf("attach %s: %w", name, err)
	}
	defer att.Close()
	wait := c.API.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := c.API.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return 0, fmt.Errorf("start %s: %w", name, err)
	}
	if err := c.pipe(att.HijackedResponse, o.TTY, o.Interactive, o.In); err != nil {
		return 0, err
	}
	select {
	case r := <-wait.Result:
		return int(r.StatusCode), nil
	case err := <-wait.Error:
		return 0, fmt.Errorf("wait %s: %w", name, err)
	}
}

// Top prints each running container's processes.
func (c *Compose) Top(ctx context.Context, project string, services []string) error {
	cts, err := c.containers(ctx, project, false, nil, services...)
	if err != nil {
		return err
	}
	for i, ct := range cts {
		res, err := c.API.ContainerTop(ctx, ct.ID, client.ContainerTopOptions{})
		if err != nil {
			return fmt.Errorf("top %s: %w", containerName(ct), err)
		}
		if i > 0 {
			fmt.Fprintln(c.Out)
		}
		fmt.Fprintln(c.Out, containerName(ct))
		rows := append([][]string{res.Titles}, res.Processes...)
		writeTable(c.Out, rows)
	}
	return nil
}

// writeTable prints rows as space-aligned columns (3 spaces apart).
func writeTable(w io.Writer, rows [][]string) {
	var widths []int
	for _, r := range rows {
		for i, cell := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len(cell))
		}
	}
	bw := bufio.NewWriter(w)
	for _, r := range rows {
		for i, cell := range r {
			if i == len(r)-1 {
				bw.WriteString(cell)
			} else {
				fmt.Fprintf(bw, "%-*s   ", widths[i], cell)
			}
		}
		bw.WriteString("\n")
	}
	bw.Flush()
}

// ImageRow is one line of `compose images`.
type ImageRow struct {
	Container, Repository, Tag, ID string
	Size                           int64
}

// Images lists the images the project's containers use.
func (c *Compose) Images(ctx context.Context, project string, services []string) ([]ImageRow, error) {
	cts, err := c.containers(ctx, project, true, ptr(false), services...)
	if err != nil {
		return nil, err
	}
	var rows []ImageRow
	for _, ct := range cts {
		row := ImageRow{Container: containerName(ct), ID: ct.ImageID}
		repo, tag := ct.Image, "latest"
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo, tag = repo[:i], repo[i+1:]
		}
		row.Repository, row.Tag = repo, tag
		if img, err := c.API.ImageInspect(ctx, ct.ImageID); err == nil {
			row.Size = img.Size
			row.ID = img.ID
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// Events prints the project's container events as docker compose does:
// "<time> container <action> <id> (name=..., service=...)"; json prints
// one object a line.
func (c *Compose) Events(ctx context.Context, project string, services []string, asJSON bool) error {
	res := c.API.Events(ctx, client.EventsListOptions{Filters: projectFilter(project)})
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-res.Err:
			if err == nil || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("events: %w", err)
		case m := <-res.Messages:
			if m.Type != events.ContainerEventType {
				continue
			}
			svc := m.Actor.Attributes[LabelService]
			if len(services) > 0 && !contains(services, svc) {
				continue
			}
			printEvent(c.Out, m, svc, asJSON)
		}
	}
}

func printEvent(w io.Writer, m events.Message, svc string, asJSON bool) {
	t := time.Unix(0, m.TimeNano)
	if m.TimeNano == 0 {
		t = time.Unix(m.Time, 0)
	}
	attrs := map[string]string{}
	for k, v := range m.Actor.Attributes {
		if !strings.HasPrefix(k, "com.docker.compose.") {
			attrs[k] = v
		}
	}
	if asJSON {
		fmt.Fprintf(w, "{\"action\":%q,\"attributes\":%s,\"id\":%q,\"service\":%q,\"time\":%q,\"type\":\"container\"}\n",
			m.Action, jsonMap(attrs), m.Actor.ID, svc, t.Format(time.RFC3339Nano))
		return
	}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+attrs[k])
	}
	fmt.Fprintf(w, "%s container %s %s (%s)\n", t.Format("2006-01-02 15:04:05.000000"), m.Action, m.Actor.ID, strings.Join(parts, ", "))
}

func jsonMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%q", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}
