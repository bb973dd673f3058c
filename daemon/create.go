package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
)

// ContainerCreate implements api.ContainerBackend.
func (d *Daemon) ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error) {
	if req == nil || req.Config == nil {
		return container.CreateResponse{}, errdefs.InvalidParameterf("config cannot be empty in order to create a container")
	}
	cfg := *req.Config
	hc := container.HostConfig{}
	if req.HostConfig != nil {
		hc = *req.HostConfig
	}
	if err := validateHostConfig(&hc); err != nil {
		return container.CreateResponse{}, err
	}
	if err := d.validateSecHostConfig(&hc); err != nil {
		return container.CreateResponse{}, err
	}
	endpoints, err := d.netValidate(&hc, req.NetworkingConfig)
	if err != nil {
		return container.CreateResponse{}, err
	}
	if cfg.Image == "" {
		return container.CreateResponse{}, errdefs.InvalidParameterf("no image specified")
	}
	img, err := d.images.Get(ctx, cfg.Image)
	if err != nil {
		return container.CreateResponse{}, err
	}
	if name != "" {
		if !validName.MatchString(name) {
			return container.CreateResponse{}, errdefs.InvalidParameterf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
		}
		name = strings.TrimPrefix(name, "/")
	} else {
		name = d.containers.generateName()
	}

	// Merge the image's config the way Docker does: the container's values
	// win; Cmd is inherited only when neither Cmd nor Entrypoint is given.
	ic := img.Config.Config
	if len(cfg.Entrypoint) == 0 {
		cfg.Entrypoint = ic.Entrypoint
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = ic.Cmd
		}
	}
	cfg.Env = mergeEnv(ic.Env, cfg.Env)
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = ic.WorkingDir
	}
	if cfg.User == "" {
		cfg.User = ic.User
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = ic.StopSignal
	}
	labels := map[string]string{}
	for k, v := range ic.Labels {
		labels[k] = v
	}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	cfg.Labels = labels
	if cfg.Healthcheck == nil && ic.Healthcheck != nil {
		hcfg := container.HealthConfig(*ic.Healthcheck)
		cfg.Healthcheck = &hcfg
	}
	args := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	if len(args) == 0 {
		return container.CreateResponse{}, errdefs.InvalidParameterf("no command specified")
	}

	id := newID()
	if cfg.Hostname == "" && hc.NetworkMode != "host" {
		cfg.Hostname = id[:12]
	}
	c := &Container{
		ID:         id,
		Name:       "/" + name,
		Created:    time.Now().UTC(),
		Path:       args[0],
		Args:       args[1:],
		Config:     &cfg,
		HostConfig: &hc,
		ImageID:    img.ID,
		State:      State{Status: container.StateCreated},
		dir:        filepath.Join(d.cfg.containersDir(), id),
		stateDir:   filepath.Join(d.cfg.stateDir(), id),
		exited:     make(chan struct{}),
		removed:    make(chan struct{}),
	}
	close(c.exited)
	madeVolumes, err := d.resolveMounts(c, img) // volumes.go
	if err != nil {
		return container.CreateResponse{}, err
	}
	if err := d.containers.add(c); err != nil {
		d.removeVolumes(madeVolumes)
		return container.CreateResponse{}, err
	}
	if err := d.createOnDisk(ctx, c, img); err != nil {
		d.removeVolumes(madeVolumes)
		d.containers.delete(c)
		d.images.RemoveRootfs(context.WithoutCancel(ctx), c.ID)
		os.RemoveAll(c.dir)
		return container.CreateResponse{}, err
	}
	d.netSaveEndpoints(c, endpoints)
	d.containerEvent(c, eventtypes.ActionCreate, nil)
	return container.CreateResponse{ID: id, Warnings: []string{}}, nil
}

// createOnDisk makes the container's directory, writable layer and record.
// The record is written last: a directory without one is swept on restart.
func (d *Daemon) createOnDisk(ctx context.Context, c *Container, img *image.Image) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	if _, err := d.images.CreateRootfs(context.WithoutCancel(ctx), c.ID, img); err != nil {
		return fmt.Errorf("create container rootfs: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.save()
}

func validateHostConfig(hc *container.HostConfig) error {
	if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != "no" {
		return errdefs.InvalidParameterf("can't create 'AutoRemove' container with restart policy")
	}
	if hc.Memory != 0 && hc.Memory < 6*1024*1024 {
		return errdefs.InvalidParameterf("Minimum memory limit allowed is 6MB")
	}
	if hc.NanoCPUs < 0 {
		return errdefs.InvalidParameterf("Range of CPUs is from 0.01 to the number of CPUs available")
	}
	switch hc.LogConfig.Type {
	case "", "json-file", "none":
	default:
		return errdefs.InvalidParameterf("logging driver %q is not supported (json-file and none are)", hc.LogConfig.Type)
	}
	return nil
}

// mergeEnv overlays container env on image env by variable name.
func mergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	index := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}
