package daemon

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
)

// ContainerRemove implements api.ContainerBackend.
func (d *Daemon) ContainerRemove(ctx context.Context, name string, force, removeVolumes bool) error {
	c, err := d.containers.get(name)
	if err != nil {
		return err
	}
	return d.removeContainer(context.WithoutCancel(ctx), c, force, removeVolumes)
}

// removeContainer deletes a container; a running one only with force (it is
// killed first).
func (d *Daemon) removeContainer(ctx context.Context, c *Container, force, removeVolumes bool) error {
	c.mu.Lock()
	if c.removing {
		c.mu.Unlock()
		// Someone else is removing it (e.g. auto-remove): wait for them.
		select {
		case <-c.removed:
			return nil
		case <-time.After(30 * time.Second):
			return errdefs.Conflictf("removal of container %s is already in progress", trimSlash(c.Name))
		}
	}
	running := c.State.running()
	if running && !force {
		c.mu.Unlock()
		return errdefs.Conflictf("You cannot remove a running container %s. Stop the container before attempting removal or force remove", c.ID)
	}
	c.removing = true
	exited := c.exited
	c.mu.Unlock()
	if running {
		d.signal(ctx, c, 9)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			c.mu.Lock()
			c.removing = false
			c.mu.Unlock()
			return fmt.Errorf("remove container %s: it did not die after SIGKILL", c.ID)
		}
	}
	// Removing the record first makes the removal atomic for restore: a
	// container dir without a record is cleaned up there, rootfs included.
	if err := os.Remove(c.dir + "/" + configFile); err != nil && !os.IsNotExist(err) {
		c.mu.Lock()
		c.removing = false
		c.mu.Unlock()
		return fmt.Errorf("remove container %s: %w", c.ID, err)
	}
	c.mu.Lock()
	releasing := c.releasing
	c.mu.Unlock()
	d.containers.delete(c)
	if removeVolumes {
		d.removeAnonymousVolumes(c) // volumes.go
	}
	c.mu.Lock()
	d.containerEvent(c, eventtypes.ActionDestroy, nil)
	close(c.removed)
	c.mu.Unlock()
	// The container is gone for every client now; its files go after the
	// answer (unmounting and deleting a rootfs takes ~10 ms, which
	// `docker run --rm` would otherwise wait for). Image removal waits
	// for these (waitRemovals) so that freed layers are really freed.
	d.removals.Add(1)
	go func() {
		defer d.removals.Done()
		if err := d.images.RemoveRootfs(ctx, c.ID); err != nil {
			d.log.Warn("remove container rootfs", "id", c.ID, "err", err)
		}
		if err := os.RemoveAll(c.dir); err != nil {
			d.log.Warn("remove container dir", "id", c.ID, "err", err)
		}
		if !releasing {
			os.RemoveAll(c.stateDir)
		}
	}()
	return nil
}

// waitRemovals waits until the files of removed containers are gone.
func (d *Daemon) waitRemovals() { d.removals.Wait() }

// ContainersPrune implements api.ContainerBackend: removes stopped containers.
func (d *Daemon) ContainersPrune(ctx context.Context, ef filters.Args) (*container.PruneReport, error) {
	if err := ef.Validate("label", "label!", "until"); err != nil {
		return nil, err
	}
	var until time.Time
	if ef.Has("until") {
		t, err := parseTimestamp(ef.Get("until")[0], time.Now())
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		until = t
	}
	report := &container.PruneReport{ContainersDeleted: []string{}}
	for _, c := range d.containers.list() {
		c.mu.Lock()
		skip := c.State.running() || !ef.MatchLabels("label", c.Config.Labels) ||
			(ef.Has("label!") && matchesAnyLabel(ef.Get("label!"), c.Config.Labels)) ||
			(!until.IsZero() && !c.Created.Before(until))
		c.mu.Unlock()
		if skip {
			continue
		}
		rw, _, _ := d.images.RootfsSize(ctx, c.ID)
		if err := d.removeContainer(ctx, c, false, false); err != nil {
			continue
		}
		report.ContainersDeleted = append(report.ContainersDeleted, c.ID)
		report.SpaceReclaimed += uint64(rw)
	}
	d.events.Publish(eventtypes.ContainerEventType, eventtypes.ActionPrune, "", map[string]string{"reclaimed": fmt.Sprint(report.SpaceReclaimed)})
	return report, nil
}

func matchesAnyLabel(fs []string, labels map[string]string) bool {
	for _, f := range fs {
		args := filters.Args{}
		args.Add("label", f)
		if args.MatchLabels("label", labels) {
			return true
		}
	}
	return false
}
