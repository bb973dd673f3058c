package daemon

import (
	"context"
	"strconv"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
)

// Docker's restart back-off: 100 ms doubling up to a minute, back to
// 100 ms once a run lasted 10 s.
const (
	restartFirstDelay = 100 * time.Millisecond
	restartMaxDelay   = time.Minute
	restartResetAfter = 10 * time.Second
)

// restartState is the restart manager's state of one container. Only
// ManuallyStopped is persisted (as Docker's HasBeenManuallyStopped): it
// keeps an unless-stopped container down across daemon restarts.
type restartState struct {
	ManuallyStopped bool

	delay time.Duration
	// canceled is set by stop/kill: the coming exit does not restart.
	canceled bool
	// auto marks a start made by the restart manager itself.
	auto bool
	// cancel aborts a scheduled restart.
	cancel chan struct{}
}

// shouldRestart applies the policy to an exit; it advances the back-off
// and the restart count when it says yes. Caller holds c.mu.
func (c *Container) shouldRestart(exitCode int, ran time.Duration, onRestore bool) bool {
	rs := &c.Restart
	if rs.canceled && !onRestore {
		return false
	}
	p := c.HostConfig.RestartPolicy
	var restart bool
	switch p.Name {
	case container.RestartPolicyAlways:
		// A manual stop holds until the next daemon start.
		restart = !rs.ManuallyStopped || onRestore
	case container.RestartPolicyUnlessStopped:
		restart = !rs.ManuallyStopped
	case container.RestartPolicyOnFailure:
		restart = exitCode != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount) &&
			(!rs.ManuallyStopped || onRestore)
	}
	if !restart {
		return false
	}
	if ran >= restartResetAfter {
		rs.delay = 0
	}
	switch {
	case rs.delay == 0:
		rs.delay = restartFirstDelay
	case rs.delay < restartMaxDelay:
		rs.delay *= 2
	}
	rs.delay = min(rs.delay, restartMaxDelay)
	c.RestartCount++
	return true
}

// restartOnExit runs in the monitor with c.mu held, after the exit is
// recorded: when the policy says so the container goes to "restarting"
// and is started again after the back-off, once this run is released.
func (d *Daemon) restartOnExit(c *Container, exitCode int) {
	if c.HostConfig.AutoRemove || c.removing {
		return
	}
	ran := c.State.FinishedAt.Sub(c.State.StartedAt)
	if !c.shouldRestart(exitCode, ran, false) {
		return
	}
	c.State.Status = container.StateRestarting
	if err := c.save(); err != nil {
		d.log.Error("save container state", "id", c.ID, "err", err)
	}
	d.scheduleRestart(c, c.exited, c.Restart.delay)
}

// scheduleRestart starts c after delay, once released is closed (the last
// run's shim and rootfs are let go). Caller holds c.mu.
func (d *Daemon) scheduleRestart(c *Container, released chan struct{}, delay time.Duration) {
	cancel := make(chan struct{})
	c.Restart.cancel = cancel
	go func() {
		select {
		case <-released:
		case <-cancel:
			return
		}
		select {
		case <-time.After(delay):
		case <-cancel:
			return
		}
		c.mu.Lock()
		if c.Restart.cancel != cancel || c.removing || c.State.Status != container.StateRestarting {
			c.mu.Unlock()
			return
		}
		c.Restart.cancel = nil
		c.Restart.auto = true
		// start refuses a container it takes for running.
		c.State.Status = container.StateExited
		c.mu.Unlock()
		if err := d.start(context.Background(), c); err != nil {
			d.log.Warn("restart container", "id", c.ID, "err", err)
			c.mu.Lock()
			c.Restart.auto = false
			// A failed start counts as an exit: try again per policy.
			if c.State.Status == container.StateExited && !c.removing &&
				c.shouldRestart(c.State.ExitCode, 0, false) {
				c.State.Status = container.StateRestarting
				c.save()
				d.scheduleRestart(c, c.exited, c.Restart.delay)
			}
			c.mu.Unlock()
		}
	}()
}

// cancelRestart ends a scheduled restart; a restarting container becomes
// exited. It reports whether the container was restarting. Caller holds c.mu.
func (d *Daemon) cancelRestart(c *Container) bool {
	if c.Restart.cancel != nil {
		close(c.Restart.cancel)
		c.Restart.cancel = nil
	}
	if c.State.Status != container.StateRestarting {
		return false
	}
	c.State.Status = container.StateExited
	if err := c.save(); err != nil {
		d.log.Error("save container state", "id", c.ID, "err", err)
	}
	return true
}

// noteStart is called by start with c.mu held: a start by the user (not by
// the restart manager) resets the manager and the restart count as
// Docker's does.
func (d *Daemon) noteStart(c *Container) {
	if c.Restart.auto {
		c.Restart.auto = false
		return
	}
	if c.Restart.cancel != nil {
		close(c.Restart.cancel)
		c.Restart.cancel = nil
	}
	c.Restart.ManuallyStopped = false
	c.Restart.canceled = false
	c.Restart.delay = 0
	c.RestartCount = 0
}

// noteStop is called when the user stops c: it will not restart until it
// is started again.
func (d *Daemon) noteStop(c *Container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Restart.ManuallyStopped = true
	c.Restart.canceled = true
	d.cancelRestart(c)
	c.save()
}

// noteKillLocked mirrors Docker's kill: any signal marks the container
// manually stopped; SIGKILL or the stop signal (any signal when the image
// sets none) also cancels the coming restart. A restarting container only
// has its restart cancelled; it reports true then (nothing to signal).
// Caller holds c.mu.
func (d *Daemon) noteKillLocked(c *Container, sig syscall.Signal) bool {
	if !c.State.running() {
		return false
	}
	c.Restart.ManuallyStopped = true
	stopSig := syscall.SIGTERM
	if c.Config.StopSignal != "" {
		if s, err := parseSignal(c.Config.StopSignal); err == nil {
			stopSig = s
		}
	}
	if c.Config.StopSignal == "" || sig == syscall.SIGKILL || sig == stopSig {
		c.Restart.canceled = true
	}
	restarting := d.cancelRestart(c)
	c.save()
	if restarting {
		d.containerEvent(c, eventtypes.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	}
	return restarting
}

// restartOnRestore brings back, at daemon start, the containers whose
// policy wants them running: those found exited (the host rebooted, or
// they exited while no daemon watched) and still wanted.
func (d *Daemon) restartOnRestore() {
	for _, c := range d.containers.list() {
		c.mu.Lock()
		if !c.State.running() && !c.State.StartedAt.IsZero() && !c.HostConfig.AutoRemove &&
			c.shouldRestart(c.State.ExitCode, c.State.FinishedAt.Sub(c.State.StartedAt), true) {
			// The daemon's own start is a fresh start, as in Docker.
			c.Restart = restartState{}
			c.RestartCount = 0
			c.State.Status = container.StateRestarting
			c.save()
			done := make(chan struct{})
			close(done)
			d.scheduleRestart(c, done, 0)
		}
		c.mu.Unlock()
	}
}
