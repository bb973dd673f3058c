package daemon

import (
	"context"
	"strconv"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/logs/jsonfile"
)

// ContainerLogs implements api.ContainerBackend.
func (d *Daemon) ContainerLogs(ctx context.Context, name string, opts api.LogsOptions) (<-chan api.LogMessage, bool, error) {
	c, err := d.containers.get(name)
	if err != nil {
		return nil, false, err
	}
	if !opts.Stdout && !opts.Stderr {
		return nil, false, errdefs.InvalidParameterf("Bad parameters: you must choose at least one stream")
	}
	c.mu.Lock()
	path := c.logPath()
	tty := c.Config.Tty
	stop := c.exited
	c.mu.Unlock()
	if path == "" {
		return nil, false, errdefs.InvalidParameterf("configured logging driver does not support reading")
	}
	tail := -1
	if opts.Tail != "" && opts.Tail != "all" {
		n, err := strconv.Atoi(opts.Tail)
		if err != nil || n < 0 {
			tail = -1
		} else {
			tail = n
		}
	}
	entries, err := jsonfile.Read(ctx, path, jsonfile.ReadOptions{
		Tail: tail, Since: opts.Since, Until: opts.Until, Follow: opts.Follow, Stop: stop,
	})
	if err != nil {
		return nil, false, err
	}
	out := make(chan api.LogMessage, 64)
	go func() {
		defer close(out)
		for e := range entries {
			if (e.Stream == "stderr" && !opts.Stderr) || (e.Stream != "stderr" && !opts.Stdout) {
				continue
			}
			select {
			case out <- api.LogMessage{Stream: e.Stream, Line: e.Line, Time: e.Time}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, tty, nil
}
