// Package daemon coordinates the services that make up the engine: it owns
// container objects (their lifecycle state machine, persistence and restore
// after a restart) and wires the image store, the runtime shims and the
// event bus together behind the API's backend interfaces.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth/build"
	"github.com/berth-dev/berth/daemon/events"
	"github.com/berth-dev/berth/filters"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/shim"
	"github.com/berth-dev/berth/volume"
	eventtypes "github.com/moby/moby/api/types/events"
)

// Daemon implements api.Backend.
type Daemon struct {
	cfg        Config
	log        *slog.Logger
	images     *image.Store
	containers *containerStore
	events     *events.Bus
	shims      *shim.Launcher
	started    time.Time
	ctr        *ctrService    // execs and health checks (ctr.go)
	removals   sync.WaitGroup // removed containers' files being deleted
	builder    *build.Builder // build.go
	net        *netService
	volumes    *volume.Store // volumes.go
}

// New opens the stores under cfg's roots and restores the containers a
// previous daemon left, reconnecting to the shims of running ones.
func New(ctx context.Context, cfg Config) (*Daemon, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/berth"
	}
	for _, dir := range []string{cfg.containersDir(), cfg.stateDir(), cfg.runtimeStateDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
	}
	imgs, err := image.Open(ctx, cfg.imageRoot(), cfg.Log.With("component", "image"))
	if err != nil {
		return nil, fmt.Errorf("daemon: open image store: %w", err)
	}
	shims, err := shim.NewLauncher(filepath.Join(cfg.ExecRoot, "shims"))
	if err != nil {
		imgs.Close()
		return nil, err
	}
	if cfg.Runtime == "" || cfg.Runtime == "berth" {
		shims.PrebootInits()
	}
	d := &Daemon{
		shims:      shims,
		cfg:        cfg,
		log:        cfg.Log,
		images:     imgs,
		containers: newContainerStore(),
		events:     events.New(),
		started:    time.Now(),
		ctr:        newCtrService(),
	}
	if d.builder, err = newBuilder(cfg, d); err != nil {
		imgs.Close()
		return nil, err
	}
	if err := d.openVolumes(); err != nil {
		imgs.Close()
		return nil, err
	}
	if err := d.openNetworking(ctx); err != nil {
		imgs.Close()
		return nil, err
	}
	if err := d.restore(ctx); err != nil {
		imgs.Close()
		return nil, err
	}
	return d, nil
}

// Close releases the daemon's resources. Containers keep running under
// their shims; the next daemon finds them again.
func (d *Daemon) Close() error {
	d.shims.Close()
	d.waitRemovals()
	defer d.closeNetworking()
	for _, c := range d.containers.list() {
		c.mu.Lock()
		if c.shim != nil {
			c.shim.Close()
		}
		c.mu.Unlock()
	}
	return d.images.Close()
}

// restore loads every container record and brings its state up to date.
func (d *Daemon) restore(ctx context.Context) error {
	entries, err := os.ReadDir(d.cfg.containersDir())
	if err != nil {
		return fmt.Errorf("daemon: restore: %w", err)
	}
	for _, e := range entries {
		dir := filepath.Join(d.cfg.containersDir(), e.Name())
		c, err := loadContainer(dir)
		if err != nil {
			// A container dir without a record is a create interrupted by
			// a crash: nothing refers to it, remove it.
			d.log.Warn("removing incomplete container", "dir", dir, "err", err)
			d.images.RemoveRootfs(ctx, e.Name())
			os.RemoveAll(dir)
			continue
		}
		c.stateDir = filepath.Join(d.cfg.stateDir(), c.ID)
		if err := d.containers.add(c); err != nil {
			d.log.Error("restore container", "id", c.ID, "err", err)
			continue
		}
		if c.State.running() {
			d.reattachVolumes(c) // volumes.go
			d.reconnect(ctx, c)
		}
	}
	// Auto-remove containers that exited while we were away.
	for _, c := range d.containers.list() {
		c.mu.Lock()
		autoRemove := c.HostConfig.AutoRemove && !c.State.running()
		c.mu.Unlock()
		if autoRemove {
			if err := d.removeContainer(ctx, c, true, false); err != nil {
				d.log.Warn("auto-remove", "id", c.ID, "err", err)
			}
		}
	}
	d.restartOnRestore()
	return nil
}

// reconnect finds the shim of a container recorded as running. If it is
// gone, the container is marked exited with the status the shim recorded
// (or 255 when it recorded none, as Docker does for lost containers).
func (d *Daemon) reconnect(ctx context.Context, c *Container) {
	cl, err := shim.Connect(ctx, c.stateDir)
	if err == nil {
		c.mu.Lock()
		c.shim = cl
		c.exited = make(chan struct{})
		d.startHealth(c, c.Config.Healthcheck, c.State.StartedAt, c.exited) // health.go
		c.mu.Unlock()
		go d.monitor(c, cl)
		return
	}
	d.log.Info("container's shim is gone", "id", c.ID, "err", err)
	st, ok, _ := shim.ReadExitStatus(c.stateDir)
	c.mu.Lock()
	if ok {
		c.State.ExitCode = st.Code
		c.State.OOMKilled = st.OOMKilled
		c.State.FinishedAt = st.ExitedAt
	} else {
		c.State.ExitCode = 255
		c.State.FinishedAt = time.Now()
	}
	c.State.Status = "exited"
	c.State.Pid = 0
	c.save()
	c.mu.Unlock()
	os.RemoveAll(c.stateDir)
	d.images.UnmountRootfs(ctx, c.ID)
	d.netRelease(c)
	d.releaseVolumes(c)
}

// SubscribeEvents implements api.SystemBackend.
func (d *Daemon) SubscribeEvents(since, until time.Time, ef filters.Args) ([]eventtypes.Message, <-chan eventtypes.Message, func()) {
	return d.events.Subscribe(since, until, ef)
}

func (d *Daemon) containerEvent(c *Container, action eventtypes.Action, extra map[string]string) {
	attrs := map[string]string{"name": trimSlash(c.Name), "image": c.Config.Image}
	for k, v := range c.Config.Labels {
		attrs[k] = v
	}
	for k, v := range extra {
		attrs[k] = v
	}
	d.events.Publish(eventtypes.ContainerEventType, action, c.ID, attrs)
}

func trimSlash(name string) string {
	if len(name) > 0 && name[0] == '/' {
		return name[1:]
	}
	return name
}
