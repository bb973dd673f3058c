package daemon

import (
	"context"
	"io"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/logs/jsonfile"
	"github.com/berth-dev/berth/shim"
	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
)

// ContainerAttach implements api.ContainerBackend. An attach to a created
// container waits for its start, so that output from the first byte is
// delivered (docker run attaches before it starts).
func (d *Daemon) ContainerAttach(ctx context.Context, name string, cfg api.AttachConfig) error {
	c, err := d.containers.get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	tty := c.Config.Tty
	status := c.State.Status
	c.mu.Unlock()
	if status == container.StateExited && cfg.Stream && !cfg.Logs {
		// Docker lets you attach to a stopped container only to read nothing;
		// the CLI's `attach` refuses earlier. Keep it simple and consistent.
		return errdefs.Conflictf("You cannot attach to a stopped container, start it first")
	}
	stdin, stdout, stderr, err := cfg.GetStreams(!tty)
	if err != nil {
		return err
	}
	if stdin != nil {
		defer stdin.Close()
	}
	if tty {
		stderr = stdout
	}
	if cfg.Logs {
		d.replayLogs(ctx, c, stdout, stderr, cfg)
	}
	if !cfg.Stream {
		return nil
	}
	streams := shim.Streams{}
	if cfg.UseStdin && stdin != nil {
		streams.Stdin = stdin
	}
	if cfg.UseStdout {
		streams.Stdout = stdout
	}
	if cfg.UseStderr {
		streams.Stderr = stderr
	}

	c.mu.Lock()
	d.containerEvent(c, eventtypes.ActionAttach, nil)
	var done <-chan error
	if c.State.running() && c.shim != nil {
		cl := c.shim
		c.mu.Unlock()
		done, err = cl.Attach(ctx, streams)
		if err != nil {
			return err
		}
	} else {
		p := &pendingAttach{streams: streams, result: make(chan (<-chan error), 1)}
		c.pending = append(c.pending, p)
		removed := c.removed
		c.mu.Unlock()
		select {
		case done = <-p.result:
		case <-removed:
			return nil
		case <-ctx.Done():
			c.mu.Lock()
			for i, q := range c.pending {
				if q == p {
					c.pending = append(c.pending[:i], c.pending[i+1:]...)
					break
				}
			}
			c.mu.Unlock()
			return nil
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

func (d *Daemon) replayLogs(ctx context.Context, c *Container, stdout, stderr io.Writer, cfg api.AttachConfig) {
	c.mu.Lock()
	path := c.logPath()
	c.mu.Unlock()
	if path == "" {
		return
	}
	entries, err := jsonfile.Read(ctx, path, jsonfile.ReadOptions{Tail: -1})
	if err != nil {
		return
	}
	for e := range entries {
		switch {
		case e.Stream == "stderr" && cfg.UseStderr && stderr != nil:
			stderr.Write(e.Line)
		case e.Stream != "stderr" && cfg.UseStdout && stdout != nil:
			stdout.Write(e.Line)
		}
	}
}

// ContainerResize implements api.ContainerBackend.
func (d *Daemon) ContainerResize(ctx context.Context, name string, height, width uint16) error {
	c, err := d.containers.get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	cl := c.shim
	running := c.State.running()
	c.mu.Unlock()
	if !running || cl == nil {
		return errdefs.Conflictf("Container %s is not running", c.ID)
	}
	return cl.Resize(ctx, height, width)
}
