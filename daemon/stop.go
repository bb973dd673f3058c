package daemon

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/errdefs"
	eventtypes "github.com/moby/moby/api/types/events"
)

const defaultStopTimeout = 10 * time.Second

// ContainerStop implements api.ContainerBackend.
func (d *Daemon) ContainerStop(ctx context.Context, name, signal string, timeout *int) error {
	c, err := d.containers.get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running := c.State.running()
	c.mu.Unlock()
	if !running {
		return errdefs.NotModified(fmt.Errorf("container %s is already stopped", c.ID))
	}
	return d.stop(context.WithoutCancel(ctx), c, signal, timeout)
}

// stop sends the stop signal, waits up to the timeout, then kills.
func (d *Daemon) stop(ctx context.Context, c *Container, signal string, timeout *int) error {
	d.noteStop(c)
	c.mu.Lock()
	if signal == "" {
		signal = c.Config.StopSignal
	}
	wait := defaultStopTimeout
	if c.Config.StopTimeout != nil {
		wait = time.Duration(*c.Config.StopTimeout) * time.Second
	}
	exited := c.exited
	c.mu.Unlock()
	if timeout != nil {
		wait = time.Duration(*timeout) * time.Second
	}
	sig := syscall.SIGTERM
	if signal != "" {
		var err error
		if sig, err = parseSignal(signal); err != nil {
			return err
		}
	}
	if err := d.signal(ctx, c, sig); err != nil && !errdefs.IsConflict(err) {
		return err
	}
	if wait < 0 { // -1 waits forever
		<-exited
	} else {
		select {
		case <-exited:
		case <-time.After(wait):
			if err := d.signal(ctx, c, syscall.SIGKILL); err != nil && !errdefs.IsConflict(err) {
				return err
			}
			<-exited
		}
	}
	c.mu.Lock()
	d.containerEvent(c, eventtypes.ActionStop, nil)
	c.mu.Unlock()
	return nil
}

// ContainerKill implements api.ContainerBackend.
func (d *Daemon) ContainerKill(ctx context.Context, name, signal string) error {
	c, err := d.containers.get(name)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = parseSignal(signal); err != nil {
			return err
		}
	}
	return d.signal(ctx, c, sig)
}

// signal sends sig to the container; a stopped container is a Conflict.
func (d *Daemon) signal(ctx context.Context, c *Container, sig syscall.Signal) error {
	c.mu.Lock()
	cl := c.shim
	if d.noteKillLocked(c, sig) {
		c.mu.Unlock()
		return nil
	}
	running := c.State.running()
	if running {
		d.containerEvent(c, eventtypes.ActionKill, map[string]string{"signal": fmt.Sprint(int(sig))})
	}
	c.mu.Unlock()
	if !running || cl == nil {
		return errdefs.Conflictf("Cannot kill container: %s: container %s is not running", trimSlash(c.Name), c.ID)
	}
	if err := cl.Signal(ctx, sig); err != nil {
		if strings.Contains(err.Error(), "process already finished") {
			return nil
		}
		return fmt.Errorf("kill container %s: %w", c.ID, err)
	}
	d.thawAfterKill(c, sig) // ctr_more.go
	return nil
}

// ContainerRestart implements api.ContainerBackend.
func (d *Daemon) ContainerRestart(ctx context.Context, name, signal string, timeout *int) error {
	c, err := d.containers.get(name)
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	c.mu.Lock()
	running := c.State.running()
	c.mu.Unlock()
	if running {
		if err := d.stop(ctx, c, signal, timeout); err != nil {
			return err
		}
	}
	if err := d.start(ctx, c); err != nil {
		return err
	}
	c.mu.Lock()
	d.containerEvent(c, eventtypes.ActionRestart, nil)
	c.mu.Unlock()
	return nil
}
