package compose

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
)

// fakeAPI is an in-memory daemon recording the calls compose makes.
type fakeAPI struct {
	mu         sync.Mutex
	calls      []string
	containers map[string]*fakeContainer // by ID
	networks   map[string]map[string]string
	volumes    map[string]map[string]string
	images     map[string]string // ref -> ID
	health     container.HealthStatus
	exitCode   int
	nextID     int
}

type fakeContainer struct {
	id, name string
	opts     client.ContainerCreateOptions
	state    container.ContainerState
}

func newFake() *fakeAPI {
	return &fakeAPI{
		containers: map[string]*fakeContainer{},
		networks:   map[string]map[string]string{},
		volumes:    map[string]map[string]string{},
		images:     map[string]string{"busybox": "sha256:bb", "busybox:latest": "sha256:bb"},
		health:     container.Healthy,
	}
}

func (f *fakeAPI) record(format string, a ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
}

// callsWith returns the recorded calls starting with prefix.
func (f *fakeAPI) callsWith(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeAPI) reset() {
	f.mu.Lock()
	f.calls = nil
	f.mu.Unlock()
}

func notFound(what string) error { return fmt.Errorf("%s: %w", what, cerrdefs.ErrNotFound) }

func (f *fakeAPI) byName(name string) *fakeContainer {
	for _, c := range f.containers {
		if c.id == name || c.name == name {
			return c
		}
	}
	return nil
}

func (f *fakeAPI) ContainerCreate(_ context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byName(o.Name) != nil {
		return client.ContainerCreateResult{}, fmt.Errorf("name %s in use: %w", o.Name, cerrdefs.ErrConflict)
	}
	f.nextID++
	id := fmt.Sprintf("%064d", f.nextID)
	f.containers[id] = &fakeContainer{id: id, name: o.Name, opts: o, state: container.StateCreated}
	f.record("create %s", o.Name)
	return client.ContainerCreateResult{ID: id}, nil
}

func (f *fakeAPI) ContainerStart(_ context.Context, id string, _ client.ContainerStartOptions) (client.ContainerStartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byName(id)
	if c == nil {
		return client.ContainerStartResult{}, notFound(id)
	}
	c.state = container.StateRunning
	f.record("start %s", c.name)
	return client.ContainerStartResult{}, nil
}

func (f *fakeAPI) ContainerStop(_ context.Context, id string, _ client.ContainerStopOptions) (client.ContainerStopResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byName(id)
	if c == nil {
		return client.ContainerStopResult{}, notFound(id)
	}
	c.state = container.StateExited
	f.record("stop %s", c.name)
	return client.ContainerStopResult{}, nil
}

func (f *fakeAPI) ContainerRestart(_ context.Context, id string, _ client.ContainerRestartOptions) (client.ContainerRestartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byName(id)
	if c == nil {
		return client.ContainerRestartResult{}, notFound(id)
	}
	c.state = container.StateRunning
	f.record("restart %s", c.name)
	return client.ContainerRestartResult{}, nil
}

func (f *fakeAPI) ContainerRemove(_ context.Context, id string, _ client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byName(id)
	if c == nil {
		return client.ContainerRemoveResult{}, notFound(id)
	}
	delete(f.containers, c.id)
	f.record("remove %s", c.name)
	return client.ContainerRemoveResult{}, nil
}

func (f *fakeAPI) ContainerList(_ context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out client.ContainerListResult
	for _, c := range f.containers {
		match := true
		for lf := range o.Filters["label"] {
			k, v, _ := strings.Cut(lf, "=")
			if c.opts.Config.Labels[k] != v {
				match = false
			}
		}
		if match && (o.All || c.state == container.StateRunning) {
			out.Items = append(out.Items, container.Summary{ID: c.id, Names: []string{"/" + c.name},
				Labels: c.opts.Config.Labels, State: c.state, Image: c.opts.Config.Image})
		}
	}
	return out, nil
}

func (f *fakeAPI) ContainerInspect(_ context.Context, id string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byName(id)
	if c == nil {
		return client.ContainerInspectResult{}, notFound(id)
	}
	st := &container.State{Status: c.state, Running: c.state == container.StateRunning, ExitCode: f.exitCode}
	if c.opts.Config.Healthcheck != nil {
		st.Health = &container.Health{Status: f.health}
	}
	return client.ContainerInspectResult{Container: container.InspectResponse{ID: c.id, Name: "/" + c.name, State: st, Config: c.opts.Config}}, nil
}

func (f *fakeAPI) ContainerLogs(context.Context, string, client.ContainerLogsOptions) (client.ContainerLogsResult, error) {
	return io.NopCloser(strings.NewReader("")), nil
}

func (f *fakeAPI) ContainerWait(_ context.Context, id string, _ client.ContainerWaitOptions) client.ContainerWaitResult {
	res := make(chan container.WaitResponse, 1)
	res <- container.WaitResponse{StatusCode: int64(f.exitCode)}
	return client.ContainerWaitResult{Result: res, Error: make(chan error)}
}

func (f *fakeAPI) ContainerTop(context.Context, string, client.ContainerTopOptions) (client.ContainerTopResult, error) {
	return client.ContainerTopResult{Titles: []string{"PID"}, Processes: [][]string{{"1"}}}, nil
}

func (f *fakeAPI) ContainerAttach(context.Context, string, client.ContainerAttachOptions) (client.ContainerAttachResult, error) {
	return client.ContainerAttachResult{}, cerrdefs.ErrNotImplemented
}

func (f *fakeAPI) ExecCreate(context.Context, string, client.ExecCreateOptions) (client.ExecCreateResult, error) {
	return client.ExecCreateResult{}, cerrdefs.ErrNotImplemented
}
func (f *fakeAPI) ExecStart(context.Context, string, client.ExecStartOptions) (client.ExecStartResult, error) {
	return client.ExecStartResult{}, cerrdefs.ErrNotImplemented
}
func (f *fakeAPI) ExecAttach(context.Context, string, client.ExecAttachOptions) (client.ExecAttachResult, error) {
	return client.ExecAttachResult{}, cerrdefs.ErrNotImplemented
}
func (f *fakeAPI) ExecInspect(context.Context, string, client.ExecInspectOptions) (client.ExecInspectResult, error) {
	return client.ExecInspectResult{}, cerrdefs.ErrNotImplemented
}

func (f *fakeAPI) NetworkCreate(_ context.Context, name string, o client.NetworkCreateOptions) (client.NetworkCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.networks[name] = o.Labels
	f.record("network create %s", name)
	return client.NetworkCreateResult{ID: name}, nil
}

func (f *fakeAPI) NetworkList(context.Context, client.NetworkListOptions) (client.NetworkListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var r client.NetworkListResult
	for name, l := range f.networks {
		r.Items = append(r.Items, network.Summary{Network: network.Network{Name: name, Labels: l}})
	}
	return r, nil
}

func (f *fakeAPI) NetworkInspect(_ context.Context, name string, _ client.NetworkInspectOptions) (client.NetworkInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.networks[name]
	if !ok {
		return client.NetworkInspectResult{}, notFound(name)
	}
	var r client.NetworkInspectResult
	r.Network.Name = name
	r.Network.Labels = l
	return r, nil
}

func (f *fakeAPI) NetworkRemove(_ context.Context, name string, _ client.NetworkRemoveOptions) (client.NetworkRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.networks, name)
	f.record("network remove %s", name)
	return client.NetworkRemoveResult{}, nil
}

func (f *fakeAPI) VolumeCreate(_ context.Context, o client.VolumeCreateOptions) (client.VolumeCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.volumes[o.Name] = o.Labels
	f.record("volume create %s", o.Name)
	return client.VolumeCreateResult{Volume: volume.Volume{Name: o.Name, Labels: o.Labels}}, nil
}

func (f *fakeAPI) VolumeInspect(_ context.Context, name string, _ client.VolumeInspectOptions) (client.VolumeInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.volumes[name]
	if !ok {
		return client.VolumeInspectResult{}, notFound(name)
	}
	return client.VolumeInspectResult{Volume: volume.Volume{Name: name, Labels: l}}, nil
}

func (f *fakeAPI) VolumeList(context.Context, client.VolumeListOptions) (client.VolumeListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var r client.VolumeListResult
	for name, l := range f.volumes {
		r.Items = append(r.Items, volume.Volume{Name: name, Labels: l})
	}
	return r, nil
}

func (f *fakeAPI) VolumeRemove(_ context.Context, name string, _ client.VolumeRemoveOptions) (client.VolumeRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.volumes, name)
	f.record("volume remove %s", name)
	return client.VolumeRemoveResult{}, nil
}

func (f *fakeAPI) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.images[ref]
	if !ok {
		return client.ImageInspectResult{}, notFound(ref)
	}
	return client.ImageInspectResult{InspectResponse: image.InspectResponse{ID: id}}, nil
}

func (f *fakeAPI) ImageList(context.Context, client.ImageListOptions) (client.ImageListResult, error) {
	return client.ImageListResult{}, nil
}

func (f *fakeAPI) ImageRemove(_ context.Context, ref string, _ client.ImageRemoveOptions) (client.ImageRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.images, ref)
	f.record("image remove %s", ref)
	return client.ImageRemoveResult{}, nil
}

func (f *fakeAPI) ImageBuild(_ context.Context, ctx io.Reader, o client.ImageBuildOptions) (client.ImageBuildResult, error) {
	n, _ := io.Copy(io.Discard, ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	for _, t := range o.Tags {
		f.images[t] = fmt.Sprintf("sha256:built%d", f.nextID)
	}
	args := []string{}
	for k, v := range o.BuildArgs {
		args = append(args, k+"="+*v)
	}
	slices.Sort(args)
	f.record("build %s dockerfile=%s target=%s args=%s context=%v", strings.Join(o.Tags, ","), o.Dockerfile, o.Target, strings.Join(args, ","), n > 0)
	return client.ImageBuildResult{Body: io.NopCloser(strings.NewReader(`{"stream":"built\n"}`))}, nil
}

func (f *fakeAPI) ImagePull(_ context.Context, ref string, _ client.ImagePullOptions) (client.ImagePullResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("pull %s", ref)
	return nil, fmt.Errorf("pull %s: %w", ref, cerrdefs.ErrNotFound)
}

func (f *fakeAPI) ImagePush(_ context.Context, ref string, _ client.ImagePushOptions) (client.ImagePushResponse, error) {
	return nil, cerrdefs.ErrNotImplemented
}

func (f *fakeAPI) Events(context.Context, client.EventsListOptions) client.EventsResult {
	return client.EventsResult{Messages: make(chan events.Message), Err: make(chan error)}
}

var (
	_ API             = (*fakeAPI)(nil)
	_ network.PortMap = nil
)
