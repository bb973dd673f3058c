package daemon

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
)

// ContainerInspect implements api.ContainerBackend.
func (d *Daemon) ContainerInspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error) {
	c, err := d.containers.get(name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.State
	cfg := *c.Config
	hc := *c.HostConfig
	if hc.NetworkMode == "" {
		hc.NetworkMode = "default"
	}
	resp := &container.InspectResponse{
		ID:      c.ID,
		Created: c.Created.Format(time.RFC3339Nano),
		Path:    c.Path,
		Args:    nonNil(c.Args),
		State: &container.State{
			Status:     st.Status,
			Running:    st.Status == container.StateRunning,
			Paused:     st.Status == container.StatePaused,
			Restarting: st.Status == container.StateRestarting,
			OOMKilled:  st.OOMKilled,
			Dead:       st.Status == container.StateDead,
			Pid:        st.Pid,
			ExitCode:   st.ExitCode,
			Error:      st.Error,
			StartedAt:  apiTime(st.StartedAt),
			FinishedAt: apiTime(st.FinishedAt),
		},
		Image:          c.ImageID.String(),
		ResolvConfPath: c.resolvConfPath(),
		HostnamePath:   c.hostnamePath(),
		HostsPath:      c.hostsPath(),
		LogPath:        c.logPath(),
		Name:           c.Name,
		RestartCount:   c.RestartCount,
		Driver:         "overlay2",
		Platform:       "linux",
		HostConfig:     &hc,
		GraphDriver:    &storage.DriverData{Name: "overlay2", Data: map[string]string{}},
		Mounts:         []container.MountPoint{},
		Config:         &cfg,
		NetworkSettings: &container.NetworkSettings{
			Ports:    network.PortMap{},
			Networks: map[string]*network.EndpointSettings{},
		},
	}
	resp.State.Health = d.healthState(c) // health.go
	resp.ExecIDs = d.execIDs(c)          // exec.go
	resp.NetworkSettings = d.netSettings(c)
	resp.Mounts = d.apiMountPoints(c) // volumes.go
	if size {
		rw, total, err := d.images.RootfsSize(ctx, c.ID)
		if err == nil {
			resp.SizeRw, resp.SizeRootFs = &rw, &total
		}
	}
	return resp, nil
}

// apiTime formats like Docker: RFC 3339 with nanoseconds, or the zero time.
func apiTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
