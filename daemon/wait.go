package daemon

import (
	"context"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/container"
)

// ContainerWait implements api.ContainerBackend.
func (d *Daemon) ContainerWait(ctx context.Context, name string, condition container.WaitCondition) (<-chan container.WaitResponse, error) {
	c, err := d.containers.get(name)
	if err != nil {
		return nil, err
	}
	switch condition {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return nil, errdefs.InvalidParameterf("invalid condition: %q", condition)
	}
	c.mu.Lock()
	exited, removed, running := c.exited, c.removed, c.State.running()
	// A container that was created but never started has not yet had its
	// "next exit": waiting for it must outlast the coming start.
	neverStarted := c.State.Status == container.StateCreated
	c.mu.Unlock()

	out := make(chan container.WaitResponse, 1)
	go func() {
		defer close(out)
		switch {
		case condition == container.WaitConditionRemoved:
			select {
			case <-removed:
			case <-ctx.Done():
				return
			}
		case condition == container.WaitConditionNextExit || (neverStarted && condition != container.WaitConditionNotRunning):
			if !running {
				// Wait for a start, then its exit.
				if !d.waitNextRun(ctx, c, exited) {
					return
				}
				c.mu.Lock()
				exited = c.exited
				c.mu.Unlock()
			}
			select {
			case <-exited:
			case <-ctx.Done():
				return
			}
		default:
			select {
			case <-exited:
			case <-ctx.Done():
				return
			}
		}
		c.mu.Lock()
		resp := container.WaitResponse{StatusCode: int64(c.State.ExitCode)}
		if c.State.Error != "" {
			resp.Error = &container.WaitExitError{Message: c.State.Error}
		}
		c.mu.Unlock()
		out <- resp
	}()
	return out, nil
}

// waitNextRun blocks until the container's exited channel is replaced by a
// new run's (or the container is removed). It reports false if ctx ended.
func (d *Daemon) waitNextRun(ctx context.Context, c *Container, old chan struct{}) bool {
	for {
		c.mu.Lock()
		cur, removed := c.exited, c.removed
		ch := c.runChanged()
		c.mu.Unlock()
		if cur != old {
			return true
		}
		select {
		case <-ch:
		case <-removed:
			return true
		case <-ctx.Done():
			return false
		}
	}
}
