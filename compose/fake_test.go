package compose

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
)

// fakeEngine is an in-memory engine recording the calls compose makes.
type fakeEngine struct {
	API        // unimplemented methods panic
	mu         sync.Mutex
	calls      []string
	containers map[string]*fakeContainer
	networks   map[string]network.Inspect
	volumes    map[string]volume.Volume
	images     map[string]bool
	nextID     int
	failCreate string // container name whose create fails
}

type fakeContainer struct {
	opts    client.ContainerCreateOptions
	id      string
	state   container.ContainerState
	exit    int
	healthy string // "", "healthy", "unhealthy"
}

func newFake(images ...string) *fakeEngine {
	f := &fakeEngine{containers: map[string]*fakeContainer{}, networks: map[string]network.Inspect{}, volumes: map[string]volume.Volume{}, images: map[string]bool{}}
	for _, i := range images {
		f.images[i] = true
	}
	return f
}

func (f *fakeEngine) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// callsWith returns the recorded calls starting with prefix.
func (f *fakeEngine) callsWith(prefix string) []string {
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

func (f *fakeEngine) find(id string) *fakeContainer {
	for _, c := range f.containers {
		if c.id == id || c.opts.Name == id {
			return c
		}
	}
	return nil
}

var errNotFound = cerrdefs.ErrNotFound

func (f *fakeEngine) ContainerCreate(_ context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("create %s", o.Name)
	if o.Name == f.failCreate {
		return client.ContainerCreateResult{}, fmt.Errorf("boom")
	}
	if _, ok := f.containers[o.Name]; ok {
		return client.ContainerCreateResult{}, cerrdefs.ErrConflict
	}
	f.nextID++
	id := fmt.Sprintf("%064d", f.nextID)
	f.containers[o.Name] = &fakeContainer{opts: o, id: id, state: container.StateCreated}
	return client.ContainerCreateResult{ID: id}, nil
}

func (f *fakeEngine) ContainerStart(_ context.Context, id string, _ client.ContainerStartOptions) (client.ContainerStartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		return client.ContainerStartResult{}, errNotFound
	}
	f.record("start %s", c.opts.Name)
	c.state = container.StateRunning
	if c.opts.Config.Healthcheck != nil && c.healthy == "" {
		c.healthy = "healthy"
	}
	return client.ContainerStartResult{}, nil
}

func (f *fakeEngine) ContainerStop(_ context.Context, id string, _ client.ContainerStopOptions) (client.ContainerStopResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		return client.ContainerStopResult{}, errNotFound
	}
	f.record("stop %s", c.opts.Name)
	c.state = container.StateExited
	return client.ContainerStopResult{}, nil
}

func (f *fakeEngine) ContainerRemove(_ context.Context, id string, _ client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		return client.ContainerRemoveResult{}, errNotFound
	}
	f.record("remove %s", c.opts.Name)
	delete(f.containers, c.opts.Name)
	return client.ContainerRemoveResult{}, nil
}

func (f *fakeEngine) ContainerList(_ context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []container.Summary
	for name, c := range f.containers {
		if !o.All && c.state != container.StateRunning {
			continue
		}
		match := true
		for l := range o.Filters["label"] {
			k, v, _ := strings.Cut(l, "=")
			if c.opts.Config.Labels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, container.Summary{ID: c.id, Names: []string{"/" + name}, Labels: c.opts.Config.Labels, State: c.state, Image: c.opts.Config.Image})
		}
	}
	return client.ContainerListResult{Items: out}, nil
}

func (f *fakeEngine) ContainerInspect(_ context.Context, id string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		return client.ContainerInspectResult{}, errNotFound
	}
	st := &container.State{Status: c.state, Running: c.state == container.StateRunning, ExitCode: c.exit}
	if c.healthy != "" {
		st.Health = &container.Health{Status: container.HealthStatus(c.healthy)}
	}
	return client.ContainerInspectResult{Container: container.InspectResponse{ID: c.id, Name: "/" + c.opts.Name, State: st, Config: c.opts.Config}}, nil
}

func (f *fakeEngine) NetworkCreate(_ context.Context, name string, o client.NetworkCreateOptions) (client.NetworkCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("network create %s", name)
	f.networks[name] = network.Inspect{Network: network.Network{Name: name, ID: "net-" + name, Labels: o.Labels}}
	return client.NetworkCreateResult{ID: "net-" + name}, nil
}

func (f *fakeEngine) NetworkInspect(_ context.Context, id string, _ client.NetworkInspectOptions) (client.NetworkInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.networks[id]
	if !ok {
		return client.NetworkInspectResult{}, errNotFound
	}
	return client.NetworkInspectResult{Network: n}, nil
}

func (f *fakeEngine) NetworkRemove(_ context.Context, id string, _ client.NetworkRemoveOptions) (client.NetworkRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, n := range f.networks {
		if n.ID == id || name == id {
			f.record("network remove %s", name)
			delete(f.networks, name)
			return client.NetworkRemoveResult{}, nil
		}
	}
	return client.NetworkRemoveResult{}, errNotFound
}

func (f *fakeEngine) NetworkConnect(_ context.Context, id string, o client.NetworkConnectOptions) (client.NetworkConnectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("network connect %s %s", id, f.find(o.Container).opts.Name)
	return client.NetworkConnectResult{}, nil
}

func (f *fakeEngine) VolumeCreate(_ context.Context, o client.VolumeCreateOptions) (client.VolumeCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("volume create %s", o.Name)
	f.volumes[o.Name] = volume.Volume{Name: o.Name, Labels: o.Labels}
	return client.VolumeCreateResult{Volume: f.volumes[o.Name]}, nil
}

func (f *fakeEngine) VolumeInspect(_ context.Context, id string, _ client.VolumeInspectOptions) (client.VolumeInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[id]
	if !ok {
		return client.VolumeInspectResult{}, errNotFound
	}
	return client.VolumeInspectResult{Volume: v}, nil
}

func (f *fakeEngine) VolumeRemove(_ context.Context, id string, _ client.VolumeRemoveOptions) (client.VolumeRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("volume remove %s", id)
	delete(f.volumes, id)
	return client.VolumeRemoveResult{}, nil
}

func (f *fakeEngine) ImageInspect(_ context.Context, id string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.images[id] {
		return client.ImageInspectResult{}, errNotFound
	}
	return client.ImageInspectResult{InspectResponse: image.InspectResponse{ID: "sha256:" + id}}, nil
}

func (f *fakeEngine) ImageBuild(_ context.Context, r io.Reader, o client.ImageBuildOptions) (client.ImageBuildResult, error) {
	data, _ := io.ReadAll(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("build %s dockerfile=%s target=%s ctx=%d", o.Tags[0], o.Dockerfile, o.Target, len(data))
	for _, t := range o.Tags {
		f.images[t] = true
	}
	return client.ImageBuildResult{Body: io.NopCloser(strings.NewReader(`{"stream":"Step 1/1\n"}` + "\n"))}, nil
}

func (f *fakeEngine) NetworkList(context.Context, client.NetworkListOptions) (client.NetworkListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var r client.NetworkListResult
	for name, n := range f.networks {
		r.Items = append(r.Items, network.Summary{Network: network.Network{Name: name, ID: n.ID, Labels: n.Labels}})
	}
	return r, nil
}

func (f *fakeEngine) VolumeList(context.Context, client.VolumeListOptions) (client.VolumeListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var r client.VolumeListResult
	for _, v := range f.volumes {
		r.Items = append(r.Items, v)
	}
	return r, nil
}
