package daemon

import (
	"context"
	"errors"
	"fmt"
	securejoin "github.com/cyphar/filepath-securejoin"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/shim"
	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
)

// ContainerStart implements api.ContainerBackend.
func (d *Daemon) ContainerStart(ctx context.Context, name string) error {
	c, err := d.containers.get(name)
	if err != nil {
		return err
	}
	// The start outlives the request: a client that hangs up must not
	// leave a half-started container.
	return d.start(context.WithoutCancel(ctx), c)
}

func (d *Daemon) start(ctx context.Context, c *Container) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removing {
		return errdefs.Conflictf("container %s is marked for removal and cannot be started", c.ID)
	}
	if c.State.running() {
		return errdefs.NotModified(fmt.Errorf("container %s is already running", c.ID))
	}
	d.noteStart(c)
	cl, pid, err := d.launch(ctx, c)
	if err != nil {
		c.State.Error = err.Error()
		c.State.ExitCode = exitCodeFor(err)
		d.netRelease(c)
		d.releaseVolumes(c)
		c.save()
		d.failPending(c, err)
		c.notifyStart()
		if c.HostConfig.AutoRemove {
			go d.removeContainer(context.Background(), c, true, true)
		}
		return err
	}
	c.shim = cl
	c.exited = make(chan struct{})
	c.State = State{Status: container.StateRunning, Pid: pid, StartedAt: time.Now().UTC()}
	c.notifyStart()
	if err := c.save(); err != nil {
		d.log.Error("save container state", "id", c.ID, "err", err)
	}
	d.containerEvent(c, eventtypes.ActionStart, nil)
	d.startHealth(c, c.Config.Healthcheck, c.State.StartedAt, c.exited) // health.go
	go d.monitor(c, cl)
	return nil
}

// launch prepares the bundle, starts a shim, connects the attaches made
// before start (so no output is lost) and starts the process. Caller holds c.mu.
func (d *Daemon) launch(ctx context.Context, c *Container) (*shim.Client, int, error) {
	t0 := time.Now()
	netReady, err := d.netPrepare(c)
	if err != nil {
		return nil, 0, err
	}
	rootfs, err := d.images.MountRootfs(ctx, c.ID)
	if err != nil {
		return nil, 0, fmt.Errorf("mount rootfs: %w", err)
	}
	tMount := time.Since(t0)
	if wd := c.Config.WorkingDir; wd != "" && wd != "/" {
		// Docker creates a missing working directory; resolved inside the
		// root so that an image's symlinks cannot point it at the host.
		if p, err := securejoin.SecureJoin(rootfs, wd); err == nil {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return nil, 0, workdirError(wd, p, err)
			}
		}
	}
	if err := d.writeBundle(c, rootfs); err != nil {
		return nil, 0, err
	}
	tBundle := time.Since(t0)
	os.RemoveAll(c.stateDir)
	if err := os.MkdirAll(c.stateDir, 0o700); err != nil {
		return nil, 0, fmt.Errorf("start: %w", err)
	}
	if err := netReady(); err != nil {
		d.images.UnmountRootfs(ctx, c.ID)
		return nil, 0, err
	}
	logCfg := c.HostConfig.LogConfig.Config
	cl, err := d.shims.Launch(ctx, shim.Config{
		ID:              c.ID,
		BundleDir:       c.bundleDir(),
		StateDir:        c.stateDir,
		LogPath:         c.logPath(),
		LogMaxSize:      parseSize(logCfg["max-size"]),
		LogMaxFiles:     parseCount(logCfg["max-file"]),
		Runtime:         d.runtimeFor(c),
		RuntimeStateDir: filepath.Join(d.cfg.runtimeStateDir()),
		CgroupParent:    d.cfg.CgroupParent,
		Tty:             c.Config.Tty,
		OpenStdin:       c.Config.OpenStdin,
		StdinOnce:       c.Config.StdinOnce,
	})
	if err != nil {
		d.images.UnmountRootfs(ctx, c.ID)
		return nil, 0, fmt.Errorf("start container %s: %w", c.ID, err)
	}
	for _, p := range c.pending {
		done, err := cl.Attach(ctx, p.streams)
		if err != nil {
			errc := make(chan error, 1)
			errc <- err
			done = errc
		}
		p.result <- done
	}
	c.pending = nil
	tShim := time.Since(t0)
	pid, err := cl.Start(ctx)
	d.shims.Refill() // the next container's shim boots now, after this start
	d.log.Debug("launch", "id", c.ID, "mount", tMount, "bundle", tBundle, "shim", tShim, "started", time.Since(t0))
	if err != nil {
		cl.Shutdown(ctx)
		cl.Close()
		d.images.UnmountRootfs(ctx, c.ID)
		return nil, 0, err
	}
	return cl, pid, nil
}

// failPending ends attaches that waited for a start that failed.
func (d *Daemon) failPending(c *Container, err error) {
	for _, p := range c.pending {
		errc := make(chan error, 1)
		errc <- err
		p.result <- errc
	}
	c.pending = nil
}

// monitor waits for the container's exit, records it and releases what the
// run held. It runs once per run (and again for a run found on restore).
func (d *Daemon) monitor(c *Container, cl *shim.Client) {
	ctx := context.Background()
	st, err := cl.Wait(ctx)
	if errors.Is(err, net.ErrClosed) {
		// The daemon is shutting down and closed its shim clients: the
		// container keeps running and the next daemon reconnects.
		return
	}
	if err != nil {
		// The shim died under us: take its recorded status, else 255.
		var ok bool
		st, ok, _ = shim.ReadExitStatus(c.stateDir)
		if !ok {
			st = shim.ExitStatus{Code: 255, ExitedAt: time.Now()}
		}
	}
	tExit := time.Now()
	c.mu.Lock()
	c.State.Status = container.StateExited
	c.State.Pid = 0
	c.State.ExitCode = st.Code
	c.State.OOMKilled = st.OOMKilled
	c.State.FinishedAt = st.ExitedAt.UTC()
	if c.State.FinishedAt.IsZero() {
		c.State.FinishedAt = time.Now().UTC()
	}
	if err := c.save(); err != nil {
		d.log.Error("save container state", "id", c.ID, "err", err)
	}
	d.restartOnExit(c, st.Code)
	c.shim = nil
	autoRemove := c.HostConfig.AutoRemove
	// With auto-remove the shim is released in parallel with the removal,
	// which must then leave the state dir (the shim's socket) to it.
	c.releasing = autoRemove
	d.containerEvent(c, eventtypes.ActionDie, map[string]string{"exitCode": fmt.Sprint(st.Code)})
	c.mu.Unlock()
	d.netRelease(c)
	d.releaseVolumes(c)

	release := func() {
		if err := cl.Shutdown(ctx); err != nil {
			d.log.Warn("shim shutdown", "id", c.ID, "err", err)
		}
		cl.Close()
		os.RemoveAll(c.stateDir)
	}
	if autoRemove {
		// Nothing will start this container again: release the shim and
		// the cgroup while the removal runs (docker run --rm waits for it).
		go release()
	} else {
		release()
		d.images.UnmountRootfs(ctx, c.ID)
	}
	// Waiters see the exit only once the record is saved.
	c.mu.Lock()
	close(c.exited)
	c.mu.Unlock()
	tSaved := time.Since(tExit)
	if autoRemove {
		if err := d.removeContainer(ctx, c, true, true); err != nil {
			d.log.Warn("auto-remove", "id", c.ID, "err", err)
		}
	}
	d.log.Debug("exit", "id", c.ID, "saved", tSaved, "done", time.Since(tExit))
}
