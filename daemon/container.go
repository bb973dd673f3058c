package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth/shim"
	"github.com/berth-dev/berth/volume"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
)

// Container is one container: its configuration, persisted with its state in
// <data-root>/containers/<id>/config.json, and its live handles.
type Container struct {
	mu sync.Mutex

	ID         string
	Name       string // with Docker's leading "/"
	Created    time.Time
	Path       string
	Args       []string
	Config     *container.Config
	HostConfig *container.HostConfig
	ImageID    digest.Digest
	State      State
	// RestartCount counts automatic restarts.
	RestartCount int
	Restart      restartState
	// MountPoints are its volumes, binds and tmpfs mounts (volumes.go).
	MountPoints []volume.MountPoint `json:",omitempty"`

	dir      string
	stateDir string

	shim *shim.Client
	// exited is closed when the current run ends; it is replaced on start.
	exited chan struct{}
	// removed is closed when the container is gone.
	removed chan struct{}
	// started is closed (and replaced) at every start attempt.
	started chan struct{}
	// pending holds attaches made before start.
	pending []*pendingAttach
	// removing guards against concurrent removals.
	removing bool
	// releasing is set while the exited run's shim is released in the
	// background; that release removes the state dir.
	releasing bool
}

// State is the persisted run state, mirroring the API's State.
type State struct {
	Status     container.ContainerState
	Pid        int
	ExitCode   int
	Error      string
	OOMKilled  bool
	StartedAt  time.Time
	FinishedAt time.Time
}

func (s State) running() bool {
	return s.Status == container.StateRunning || s.Status == container.StatePaused || s.Status == container.StateRestarting
}

type pendingAttach struct {
	streams shim.Streams
	result  chan (<-chan error)
}

const configFile = "config.json"

// save writes the container record atomically: a crash leaves the old or
// the new record, never a torn one. Callers hold c.mu.
func (c *Container) save() error {
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("save container %s: %w", c.ID, err)
	}
	tmp := filepath.Join(c.dir, configFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("save container %s: %w", c.ID, err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, configFile)); err != nil {
		return fmt.Errorf("save container %s: %w", c.ID, err)
	}
	return nil
}

func loadContainer(dir string) (*Container, error) {
	data, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return nil, err
	}
	c := &Container{}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("load container %s: %w", dir, err)
	}
	if c.Config == nil {
		c.Config = &container.Config{}
	}
	if c.HostConfig == nil {
		c.HostConfig = &container.HostConfig{}
	}
	c.dir = dir
	c.exited = make(chan struct{})
	c.removed = make(chan struct{})
	if !c.State.running() {
		close(c.exited)
	}
	return c, nil
}

func (c *Container) logPath() string {
	if c.HostConfig.LogConfig.Type == "none" {
		return ""
	}
	return filepath.Join(c.dir, c.ID+"-json.log")
}

func (c *Container) bundleDir() string { return filepath.Join(c.dir, "bundle") }

// runChanged returns a channel closed at the next start attempt. Caller holds c.mu.
func (c *Container) runChanged() chan struct{} {
	if c.started == nil {
		c.started = make(chan struct{})
	}
	return c.started
}

// notifyStart wakes waiters of runChanged. Caller holds c.mu.
func (c *Container) notifyStart() {
	if c.started != nil {
		close(c.started)
		c.started = nil
	}
}
