package api

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
)

// fakeBackend is the route tests' backend: just enough state to observe
// what the API passed in and to drive streams (as moby's router tests do).
type fakeBackend struct {
	mu         sync.Mutex
	containers map[string]*fakeContainer
	images     map[string]string // name -> id
	imported   []ImportOptions
	importData [][]byte
	lastFilter filters.Args
	lastAll    bool
	lastLimit  int
	lastStop   struct {
		signal  string
		timeout *int
	}
	lastLogs   LogsOptions
	lastCreate *container.CreateRequest
	lastName   string
	lastResize [2]uint16
	logLines   []LogMessage
	pastEvents []events.Message
	liveEvents chan events.Message
}

type fakeContainer struct {
	id, name string
	tty      bool
	running  bool
	exitCode int
	exited   chan struct{} // closed on the current run's exit
	removed  chan struct{}
	started  chan struct{} // closed on each start (replaced after)
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		containers: map[string]*fakeContainer{},
		images:     map[string]string{"busybox:latest": "sha256:" + fmt.Sprintf("%064x", 1)},
		liveEvents: make(chan events.Message, 16),
	}
}

func (f *fakeBackend) addContainer(name string, tty bool) *fakeContainer {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := &fakeContainer{
		id: fmt.Sprintf("%064x", len(f.containers)+100), name: name, tty: tty,
		exited: make(chan struct{}), removed: make(chan struct{}), started: make(chan struct{}),
	}
	f.containers[name] = c
	return c
}

func (f *fakeBackend) get(name string) (*fakeContainer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.name == name || c.id == name {
			return c, nil
		}
	}
	return nil, errdefs.NotFoundf("No such container: %s", name)
}

// exit ends the container's current run with code.
func (f *fakeBackend) exit(c *fakeContainer, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !c.running {
		return
	}
	c.running = false
	c.exitCode = code
	close(c.exited)
}

func (f *fakeBackend) Info(ctx context.Context) (*system.Info, error) {
	return &system.Info{ID: "fake", OSType: "linux", ServerVersion: "0.0.1-test", Containers: len(f.containers)}, nil
}

func (f *fakeBackend) Version(ctx context.Context) system.VersionResponse {
	return system.VersionResponse{
		Version: "0.0.1-test", Os: "linux", Arch: "amd64",
		Components: []system.ComponentVersion{{Name: "Engine", Version: "0.0.1-test", Details: map[string]string{"Os": "linux"}}},
	}
}

func (f *fakeBackend) SubscribeEvents(since, until time.Time, ef filters.Args) ([]events.Message, <-chan events.Message, func()) {
	f.mu.Lock()
	f.lastFilter = ef
	f.mu.Unlock()
	var past []events.Message
	for _, m := range f.pastEvents {
		if since.IsZero() {
			break
		}
		t := time.Unix(0, m.TimeNano)
		if (since.IsZero() || !t.Before(since)) && (until.IsZero() || !t.After(until)) {
			past = append(past, m)
		}
	}
	if !until.IsZero() && until.Before(time.Now()) {
		return past, nil, func() {}
	}
	return past, f.liveEvents, func() {}
}

func (f *fakeBackend) ImportImage(ctx context.Context, src io.Reader, opts ImportOptions) (string, error) {
	data, err := io.ReadAll(src)
	if err != nil {
		return "", err
	}
	if len(data) == 0 {
		return "", errdefs.InvalidParameterf("empty tarball")
	}
	id := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.imported = append(f.imported, opts)
	f.importData = append(f.importData, data)
	if opts.Repo != "" {
		f.images[opts.Repo+":"+opts.Tag] = id
	}
	return id, nil
}

func (f *fakeBackend) Images(ctx context.Context, all bool, ef filters.Args) ([]image.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastFilter, f.lastAll = ef, all
	if err := ef.Validate("reference", "dangling", "label", "before", "since"); err != nil {
		return nil, err
	}
	var out []image.Summary
	for name, id := range f.images {
		if ef.Has("reference") && !ef.ExactMatch("reference", name) {
			continue
		}
		out = append(out, image.Summary{ID: id, RepoTags: []string{name}, Labels: map[string]string{}})
	}
	return out, nil
}

func (f *fakeBackend) image(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.images[name]; ok {
		return id, nil
	}
	if id, ok := f.images[name+":latest"]; ok {
		return id, nil
	}
	return "", errdefs.NotFoundf("No such image: %s", name)
}

func (f *fakeBackend) ImageInspect(ctx context.Context, name string) (*image.InspectResponse, error) {
	id, err := f.image(name)
	if err != nil {
		return nil, err
	}
	return &image.InspectResponse{ID: id, RepoTags: []string{name}, Os: "linux"}, nil
}

func (f *fakeBackend) ImageHistory(ctx context.Context, name string) ([]image.HistoryResponseItem, error) {
	id, err := f.image(name)
	if err != nil {
		return nil, err
	}
	return []image.HistoryResponseItem{{ID: id, CreatedBy: "import " + name, Tags: []string{name}}}, nil
}

func (f *fakeBackend) TagImage(ctx context.Context, name, repo, tag string) error {
	id, err := f.image(name)
	if err != nil {
		return err
	}
	if tag == "" {
		tag = "latest"
	}
	f.mu.Lock()
	f.images[repo+":"+tag] = id
	f.mu.Unlock()
	return nil
}

func (f *fakeBackend) ImageDelete(ctx context.Context, name string, force, prune bool) ([]image.DeleteResponse, error) {
	id, err := f.image(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	delete(f.images, name)
	f.mu.Unlock()
	out := []image.DeleteResponse{{Untagged: name}}
	if prune {
		out = append(out, image.DeleteResponse{Deleted: id})
	}
	return out, nil
}

func (f *fakeBackend) ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error) {
	if _, err := f.image(req.Image); err != nil {
		return container.CreateResponse{}, err
	}
	if name == "" {
		name = "auto"
	}
	if _, err := f.get(name); err == nil {
		return container.CreateResponse{}, errdefs.Conflictf("Conflict. The container name \"/%s\" is already in use", name)
	}
	f.mu.Lock()
	f.lastCreate, f.lastName = req, name
	f.mu.Unlock()
	c := f.addContainer(name, req.Tty)
	return container.CreateResponse{ID: c.id}, nil
}

func (f *fakeBackend) ContainerStart(ctx context.Context, name string) error {
	c, err := f.get(name)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.running {
		return errdefs.NotModified(fmt.Errorf("container %s is already running", name))
	}
	c.running = true
	c.exited = make(chan struct{})
	close(c.started)
	c.started = make(chan struct{})
	return nil
}

func (f *fakeBackend) ContainerStop(ctx context.Context, name, signal string, timeout *int) error {
	c, err := f.get(name)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.lastStop.signal, f.lastStop.timeout = signal, timeout
	running := c.running
	f.mu.Unlock()
	if !running {
		return errdefs.NotModified(fmt.Errorf("container %s is already stopped", name))
	}
	f.exit(c, 143)
	return nil
}

func (f *fakeBackend) ContainerKill(ctx context.Context, name, signal string) error {
	c, err := f.get(name)
	if err != nil {
		return err
	}
	f.mu.Lock()
	running := c.running
	f.lastStop.signal = signal
	f.mu.Unlock()
	if !running {
		return errdefs.Conflictf("Cannot kill container: %s: container is not running", name)
	}
	f.exit(c, 137)
	return nil
}

func (f *fakeBackend) ContainerRestart(ctx context.Context, name, signal string, timeout *int) error {
	c, err := f.get(name)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.lastStop.signal, f.lastStop.timeout = signal, timeout
	f.mu.Unlock()
	f.exit(c, 0)
	return f.ContainerStart(ctx, name)
}

func (f *fakeBackend) ContainerWait(ctx context.Context, name string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	c, err := f.get(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	running, exited, started, removed := c.running, c.exited, c.started, c.removed
	f.mu.Unlock()
	out := make(chan container.WaitResponse, 1)
	go func() {
		defer close(out)
		switch cond {
		case container.WaitConditionRemoved:
			select {
			case <-removed:
			case <-ctx.Done():
				return
			}
		case container.WaitConditionNextExit:
			if !running {
				select {
				case <-started:
				case <-ctx.Done():
					return
				}
				f.mu.Lock()
				exited = c.exited
				f.mu.Unlock()
			}
			select {
			case <-exited:
			case <-ctx.Done():
				return
			}
		default:
			if running {
				select {
				case <-exited:
				case <-ctx.Done():
					return
				}
			}
		}
		f.mu.Lock()
		res := container.WaitResponse{StatusCode: int64(c.exitCode)}
		f.mu.Unlock()
		if c.exitCode == 99 {
			res.Error = &container.WaitExitError{Message: "boom"}
		}
		out <- res
	}()
	return out, nil
}

// ContainerAttach echoes stdin to stdout when stdin is attached, then
// writes "bye" to stderr; without stdin it writes one line to each stream.
func (f *fakeBackend) ContainerAttach(ctx context.Context, name string, cfg AttachConfig) error {
	c, err := f.get(name)
	if err != nil {
		return err
	}
	stdin, stdout, stderr, err := cfg.GetStreams(!c.tty)
	if err != nil {
		return err
	}
	if cfg.UseStdin {
		if _, err := io.Copy(stdout, stdin); err != nil {
			return err
		}
		_, err := stderr.Write([]byte("bye\n"))
		return err
	}
	// Like the daemon, give up when the server ends the attach; write a
	// little later, as a container started after the attach does.
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(20 * time.Millisecond):
	}
	stdout.Write([]byte("out\n"))
	stderr.Write([]byte("err\n"))
	return nil
}

func (f *fakeBackend) ContainerLogs(ctx context.Context, name string, opts LogsOptions) (<-chan LogMessage, bool, error) {
	c, err := f.get(name)
	if err != nil {
		return nil, false, err
	}
	f.mu.Lock()
	f.lastLogs = opts
	lines := f.logLines
	f.mu.Unlock()
	ch := make(chan LogMessage)
	go func() {
		defer close(ch)
		for _, l := range lines {
			if (l.Stream == "stderr" && !opts.Stderr) || (l.Stream == "stdout" && !opts.Stdout) {
				continue
			}
			select {
			case ch <- l:
			case <-ctx.Done():
				return
			}
		}
		if opts.Follow {
			<-ctx.Done()
		}
	}()
	return ch, c.tty, nil
}

func (f *fakeBackend) Containers(ctx context.Context, all bool, limit int, size bool, ef filters.Args) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastFilter, f.lastAll, f.lastLimit = ef, all, limit
	if err := ef.Validate("status", "label", "name", "id", "ancestor", "exited"); err != nil {
		return nil, err
	}
	var out []container.Summary
	for _, c := range f.containers {
		if !all && !c.running {
			continue
		}
		if !ef.Match("name", c.name) {
			continue
		}
		out = append(out, container.Summary{ID: c.id, Names: []string{"/" + c.name}})
	}
	return out, nil
}

func (f *fakeBackend) ContainerInspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error) {
	c, err := f.get(name)
	if err != nil {
		return nil, err
	}
	resp := &container.InspectResponse{ID: c.id, Name: "/" + c.name, Config: &container.Config{Tty: c.tty}}
	if size {
		n := int64(42)
		resp.SizeRw = &n
	}
	return resp, nil
}

func (f *fakeBackend) ContainerRemove(ctx context.Context, name string, force, removeVolumes bool) error {
	c, err := f.get(name)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.running && !force {
		return errdefs.Conflictf("You cannot remove a running container %s. Stop the container before attempting removal or force remove", c.id)
	}
	delete(f.containers, c.name)
	close(c.removed)
	return nil
}

func (f *fakeBackend) ContainersPrune(ctx context.Context, ef filters.Args) (*container.PruneReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastFilter = ef
	rep := &container.PruneReport{}
	for name, c := range f.containers {
		if !c.running {
			rep.ContainersDeleted = append(rep.ContainersDeleted, c.id)
			delete(f.containers, name)
		}
	}
	return rep, nil
}

func (f *fakeBackend) ContainerResize(ctx context.Context, name string, height, width uint16) error {
	c, err := f.get(name)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !c.running {
		return errdefs.Conflictf("Container %s is not running", c.id)
	}
	f.lastResize = [2]uint16{height, width}
	return nil
}
