package daemon

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/filters"
	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
)

// Docker's health check defaults and bounds.
const (
	defaultHealthInterval      = 30 * time.Second
	defaultHealthTimeout       = 30 * time.Second
	defaultHealthStartInterval = 5 * time.Second
	defaultHealthRetries       = 3
	maxHealthLog               = 5
	maxHealthOutput            = 4096
)

// healthMonitor runs one container's health checks for one run and holds
// their state (State.Health in inspect).
type healthMonitor struct {
	mu    sync.Mutex
	state container.Health
}

// healthProbe is a resolved health check.
type healthProbe struct {
	cmd                                         []string
	interval, timeout, startPeriod, startInterv time.Duration
	retries                                     int
}

// resolveHealth applies Docker's defaults; ok is false when the container
// has no health check (none configured, or NONE).
func resolveHealth(hc *container.HealthConfig) (healthProbe, bool) {
	if hc == nil || len(hc.Test) == 0 {
		return healthProbe{}, false
	}
	var p healthProbe
	switch hc.Test[0] {
	case "NONE":
		return p, false
	case "CMD":
		p.cmd = hc.Test[1:]
	case "CMD-SHELL":
		p.cmd = []string{"/bin/sh", "-c", strings.Join(hc.Test[1:], " ")}
	default:
		// An old form: the test is a shell command.
		p.cmd = []string{"/bin/sh", "-c", strings.Join(hc.Test, " ")}
	}
	if len(p.cmd) == 0 {
		return p, false
	}
	p.interval, p.timeout, p.startPeriod, p.startInterv = hc.Interval, hc.Timeout, hc.StartPeriod, hc.StartInterval
	p.retries = hc.Retries
	if p.interval == 0 {
		p.interval = defaultHealthInterval
	}
	if p.timeout == 0 {
		p.timeout = defaultHealthTimeout
	}
	if p.startInterv == 0 {
		p.startInterv = defaultHealthStartInterval
	}
	if p.retries == 0 {
		p.retries = defaultHealthRetries
	}
	return p, true
}

// startHealth starts the health checks of a run that just started (or was
// found running at restore), until exited is closed. The caller may hold c.mu.
func (d *Daemon) startHealth(c *Container, hc *container.HealthConfig, startedAt time.Time, exited <-chan struct{}) {
	p, ok := resolveHealth(hc)
	d.ctr.mu.Lock()
	defer d.ctr.mu.Unlock()
	if !ok {
		delete(d.ctr.health, c.ID)
		return
	}
	m := &healthMonitor{state: container.Health{Status: container.Starting, Log: []*container.HealthcheckResult{}}}
	d.ctr.health[c.ID] = m
	go d.runHealth(c, m, p, startedAt, exited)
}

func (d *Daemon) runHealth(c *Container, m *healthMonitor, p healthProbe, startedAt time.Time, exited <-chan struct{}) {
	for {
		wait := p.interval
		m.mu.Lock()
		starting := m.state.Status == container.Starting
		m.mu.Unlock()
		if starting && p.startPeriod > 0 && time.Since(startedAt) < p.startPeriod && p.startInterv < wait {
			wait = p.startInterv
		}
		select {
		case <-exited:
			return
		case <-time.After(wait):
		}
		c.mu.Lock()
		paused := c.State.Status == container.StatePaused
		c.mu.Unlock()
		if paused {
			continue
		}
		res := d.probe(c, p)
		select {
		case <-exited:
			return
		default:
		}
		d.recordHealth(c, m, p, startedAt, res)
	}
}

// probe runs the check once, bounded by its timeout.
func (d *Daemon) probe(c *Container, p healthProbe) *container.HealthcheckResult {
	res := &container.HealthcheckResult{Start: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	code, out, err := d.execSync(ctx, c, p.cmd, maxHealthOutput)
	res.End = time.Now()
	switch {
	case ctx.Err() != nil:
		res.ExitCode = -1
		res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", p.timeout)
	case err != nil:
		res.ExitCode = -1
		res.Output = err.Error()
	default:
		res.ExitCode = code
		res.Output = out
	}
	return res
}

// recordHealth applies Docker's rules: success makes the container healthy;
// failures during the start period do not count while it is starting;
// retries consecutive failures make it unhealthy.
func (d *Daemon) recordHealth(c *Container, m *healthMonitor, p healthProbe, startedAt time.Time, res *container.HealthcheckResult) {
	m.mu.Lock()
	old := m.state.Status
	m.state.Log = append(m.state.Log, res)
	if len(m.state.Log) > maxHealthLog {
		m.state.Log = m.state.Log[len(m.state.Log)-maxHealthLog:]
	}
	if res.ExitCode == 0 {
		m.state.FailingStreak = 0
		m.state.Status = container.Healthy
	} else if !(old == container.Starting && p.startPeriod > 0 && res.Start.Sub(startedAt) < p.startPeriod) {
		m.state.FailingStreak++
		if m.state.FailingStreak >= p.retries {
			m.state.Status = container.Unhealthy
		}
	}
	status := m.state.Status
	m.mu.Unlock()
	if status != old {
		c.mu.Lock()
		d.containerEvent(c, eventtypes.Action("health_status: "+string(status)), nil)
		c.mu.Unlock()
	}
}

// healthState is State.Health for inspect (nil without a health check).
// It does not take c.mu (inspect holds it).
func (d *Daemon) healthState(c *Container) *container.Health {
	d.ctr.mu.Lock()
	m := d.ctr.health[c.ID]
	select {
	case <-c.removed:
		delete(d.ctr.health, c.ID) // the container is gone
		m = nil
	default:
	}
	d.ctr.mu.Unlock()
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.state
	h.Log = append([]*container.HealthcheckResult{}, m.state.Log...)
	return &h
}

// healthStatus is the container's health for ps: "" without a check or
// when it is not running.
func (d *Daemon) healthStatus(c *Container, st State) container.HealthStatus {
	if st.Status != container.StateRunning {
		return ""
	}
	h := d.healthState(c)
	if h == nil {
		return ""
	}
	return h.Status
}

// healthSuffix is what ps adds to "Up 3 seconds": " (healthy)", " (health: starting)".
func (d *Daemon) healthSuffix(c *Container, st State) string {
	switch s := d.healthStatus(c, st); s {
	case "":
		return ""
	case container.Starting:
		return " (health: starting)"
	default:
		return " (" + string(s) + ")"
	}
}

// matchHealth applies ps's health= filter (starting, healthy, unhealthy, none).
func (d *Daemon) matchHealth(c *Container, st State, ef filters.Args) bool {
	if !ef.Has("health") {
		return true
	}
	s := d.healthStatus(c, st)
	if s == "" {
		s = container.NoHealthcheck
	}
	return ef.ExactMatch("health", string(s))
}
