package daemon

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

var containerFilters = []string{"ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task", "label", "name", "network", "publish", "since", "status", "volume"}

// Containers implements api.ContainerBackend: GET /containers/json.
func (d *Daemon) Containers(ctx context.Context, all bool, limit int, size bool, ef filters.Args) ([]container.Summary, error) {
	if err := ef.Validate(containerFilters...); err != nil {
		return nil, err
	}
	if ef.Has("status") {
		for _, s := range ef.Get("status") {
			switch container.ContainerState(s) {
			case container.StateCreated, container.StateRunning, container.StatePaused, container.StateRestarting,
				container.StateRemoving, container.StateExited, container.StateDead:
			default:
				return nil, invalidFilter("status", s)
			}
		}
		all = true
	}
	var exitCodes map[int]bool
	if ef.Has("exited") {
		exitCodes = map[int]bool{}
		for _, s := range ef.Get("exited") {
			n, err := strconv.Atoi(s)
			if err != nil {
				return nil, invalidFilter("exited", s)
			}
			exitCodes[n] = true
		}
		all = true
	}
	var ancestors map[string]bool
	if ef.Has("ancestor") {
		ancestors = map[string]bool{}
		for _, a := range ef.Get("ancestor") {
			if img, err := d.images.Get(ctx, a); err == nil {
				ancestors[img.ID.String()] = true
			} else {
				ancestors[a] = true
			}
		}
	}
	var before, since time.Time
	for key, dst := range map[string]*time.Time{"before": &before, "since": &since} {
		if ef.Has(key) {
			ref, err := d.containers.get(ef.Get(key)[0])
			if err != nil {
				return nil, err
			}
			*dst = ref.Created
		}
	}

	out := []container.Summary{}
	for _, c := range d.containers.list() {
		c.mu.Lock()
		s, ok := d.summarize(c, all, exitCodes, ancestors, before, since, ef)
		c.mu.Unlock()
		if !ok {
			continue
		}
		if size {
			rw, total, err := d.images.RootfsSize(ctx, c.ID)
			if err == nil {
				s.SizeRw, s.SizeRootFs = rw, total
			}
		}
		out = append(out, s)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out, nil
}

func invalidFilter(key, value string) error {
	return errdefs.InvalidParameterf("invalid filter '%s=%s'", key, value)
}

// summarize applies the filters to c and builds its summary. Caller holds c.mu.
func (d *Daemon) summarize(c *Container, all bool, exitCodes map[int]bool, ancestors map[string]bool, before, since time.Time, ef filters.Args) (container.Summary, bool) {
	st := c.State
	if !all && !st.running() {
		return container.Summary{}, false
	}
	name := trimSlash(c.Name)
	switch {
	case !ef.ExactMatch("status", string(st.Status)),
		!ef.MatchLabels("label", c.Config.Labels),
		ef.Has("name") && !ef.Match("name", name) && !ef.Match("name", c.Name),
		ef.Has("id") && !matchIDPrefix(ef.Get("id"), c.ID),
		exitCodes != nil && (st.Status != container.StateExited || !exitCodes[st.ExitCode]),
		ancestors != nil && !ancestors[c.ImageID.String()] && !ancestors[c.Config.Image],
		!matchVolumeFilter(ef, c),
		!before.IsZero() && !c.Created.Before(before),
		!since.IsZero() && !c.Created.After(since):
		return container.Summary{}, false
	}
	if !d.matchHealth(c, st, ef) { // health.go
		return container.Summary{}, false
	}
	nm := string(c.HostConfig.NetworkMode)
	if nm == "" {
		nm = "default"
	}
	s := container.Summary{
		ID:              c.ID,
		Names:           []string{c.Name},
		Image:           c.Config.Image,
		ImageID:         c.ImageID.String(),
		Command:         commandLine(c.Path, c.Args),
		Created:         c.Created.Unix(),
		Ports:           []container.PortSummary{},
		Labels:          c.Config.Labels,
		State:           st.Status,
		Status:          statusLine(st),
		NetworkSettings: &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{}},
		Mounts:          []container.MountPoint{},
	}
	s.HostConfig.NetworkMode = nm
	s.Status += d.healthSuffix(c, st) // health.go
	s.Ports, s.NetworkSettings = d.netSummary(c)
	s.Mounts = d.apiMountPoints(c) // volumes.go
	return s, true
}

func matchIDPrefix(prefixes []string, id string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// commandLine renders path and args like Docker's ps COMMAND column.
func commandLine(path string, args []string) string {
	parts := append([]string{path}, args...)
	for i, p := range parts {
		if strings.ContainsAny(p, " \t\"'") {
			parts[i] = strconv.Quote(p)
		}
	}
	return strings.Join(parts, " ")
}

// statusLine is Docker's human status: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created".
func statusLine(st State) string {
	switch st.Status {
	case container.StateRunning:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt))
	case container.StatePaused:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt)) + " (Paused)"
	case container.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	case container.StateExited:
		if st.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", st.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	case container.StateDead:
		return "Dead"
	case container.StateRemoving:
		return "Removal In Progress"
	}
	return "Created"
}
