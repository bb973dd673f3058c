package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/api/stream"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/runtime/spec"
	"github.com/berth-dev/berth/shim"
)

var _ api.ExecBackend = (*Daemon)(nil)

// finishedExecTTL is how long a finished exec stays inspectable.
const finishedExecTTL = 10 * time.Minute

// execRecord is one exec: created, then started once.
type execRecord struct {
	id string
	c  *Container

	mu       sync.Mutex
	cfg      container.ExecCreateRequest
	started  bool
	running  bool
	exitCode *int
	pid      int
	size     *[2]uint16 // asked for before the process existed
	cl       *shim.Client
	finished time.Time
}

// ContainerExecCreate implements api.ExecBackend.
func (d *Daemon) ContainerExecCreate(ctx context.Context, name string, req *container.ExecCreateRequest) (string, error) {
	c, err := d.containers.get(name)
	if err != nil {
		return "", err
	}
	if len(req.Cmd) == 0 {
		return "", errdefs.InvalidParameterf("No exec command specified")
	}
	if req.DetachKeys != "" {
		if _, err := stream.ParseDetachKeys(req.DetachKeys); err != nil {
			return "", errdefs.InvalidParameter(err)
		}
	}
	if err := checkExecable(c); err != nil {
		return "", err
	}
	rec := &execRecord{id: newID(), c: c, cfg: *req}
	d.ctr.mu.Lock()
	for id, old := range d.ctr.execs {
		old.mu.Lock()
		stale := !old.finished.IsZero() && time.Since(old.finished) > finishedExecTTL
		old.mu.Unlock()
		select {
		case <-old.c.removed:
			stale = true
		default:
		}
		if stale {
			delete(d.ctr.execs, id)
		}
	}
	d.ctr.execs[rec.id] = rec
	d.ctr.mu.Unlock()
	c.mu.Lock()
	d.containerEvent(c, eventtypes.Action("exec_create: "+strings.Join(req.Cmd, " ")), map[string]string{"execID": rec.id})
	c.mu.Unlock()
	return rec.id, nil
}

// checkExecable refuses an exec into a container that is not running,
// with Docker's words.
func checkExecable(c *Container) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.State.Status == container.StatePaused:
		return errdefs.Conflictf("Container %s is paused, unpause the container before exec", c.ID)
	case c.State.Status == container.StateRestarting:
		return errdefs.Conflictf("Container %s is restarting, wait until the container is running", c.ID)
	case c.State.Status != container.StateRunning || c.shim == nil:
		return errdefs.Conflictf("container %s is not running", c.ID)
	}
	return nil
}

func (d *Daemon) execRecord(id string) (*execRecord, error) {
	d.ctr.mu.Lock()
	rec := d.ctr.execs[id]
	d.ctr.mu.Unlock()
	if rec == nil {
		return nil, errdefs.NotFoundf("No such exec instance: %s", id)
	}
	return rec, nil
}

// ContainerExecStart implements api.ExecBackend.
func (d *Daemon) ContainerExecStart(ctx context.Context, id string, cfg api.ExecStartConfig) error {
	rec, err := d.execRecord(id)
	if err != nil {
		return err
	}
	rec.mu.Lock()
	if rec.started {
		running := rec.running
		rec.mu.Unlock()
		if running {
			return errdefs.Conflictf("Error: Exec command %s is already running", id)
		}
		return errdefs.Conflictf("Error: Exec command %s has already run", id)
	}
	rec.started = true
	ec := rec.cfg
	if cfg.ConsoleSize != nil {
		ec.ConsoleSize = cfg.ConsoleSize
	}
	rec.mu.Unlock()
	c := rec.c
	if err := checkExecable(c); err != nil {
		rec.fail(-1)
		return err
	}
	c.mu.Lock()
	cl := c.shim
	c.mu.Unlock()

	var streams shim.Streams
	if !cfg.Detach && cfg.GetStreams != nil {
		stdin, stdout, stderr, err := cfg.GetStreams(!ec.Tty, ec.DetachKeys)
		if err != nil {
			rec.fail(-1)
			return err
		}
		if ec.AttachStdin {
			streams.Stdin = stdin
		} else if stdin != nil {
			// Nobody reads the client: drain it so that a reset ends the exec's streams.
			go io.Copy(io.Discard, stdin)
		}
		if ec.AttachStdout {
			streams.Stdout = stdout
		}
		if ec.AttachStderr && !ec.Tty {
			streams.Stderr = stderr
		}
	}
	proc, err := d.execProcess(c, ec)
	if err != nil {
		rec.fail(126)
		return err
	}
	c.mu.Lock()
	d.containerEvent(c, eventtypes.Action("exec_start: "+strings.Join(ec.Cmd, " ")), map[string]string{"execID": id})
	c.mu.Unlock()
	// The process outlives this request (a detach, a client gone).
	pid, done, err := cl.Exec(context.WithoutCancel(ctx), shim.ExecConfig{ID: id, Process: proc}, streams)
	if err != nil {
		code, werr := execStartError(err)
		rec.fail(code)
		return werr
	}
	rec.mu.Lock()
	rec.running, rec.pid, rec.cl = true, pid, cl
	size := rec.size
	rec.mu.Unlock()
	if size != nil {
		cl.ResizeExec(ctx, id, size[0], size[1])
	}
	finish := func(e shim.ExecExit) {
		code := e.Status.Code
		rec.mu.Lock()
		rec.running = false
		rec.exitCode = &code
		rec.finished = time.Now()
		rec.mu.Unlock()
		c.mu.Lock()
		d.containerEvent(c, eventtypes.Action("exec_die"), map[string]string{"execID": id, "exitCode": fmt.Sprint(code)})
		c.mu.Unlock()
	}
	if cfg.Detach {
		go func() { finish(<-done) }()
		return nil
	}
	select {
	case e := <-done:
		finish(e)
		return nil
	case <-ctx.Done():
		// Detached by the keys, or the client went: the exec goes on.
		go func() { finish(<-done) }()
		return nil
	}
}

// fail records an exec that could not start (code < 0: not run at all).
func (rec *execRecord) fail(code int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.running = false
	if code >= 0 {
		rec.exitCode = &code
	} else {
		rec.started = false
	}
	rec.finished = time.Now()
}

// execStartError turns the runtime's failure into Docker's message and
// the exit code the exec then reports (127: not found, 126: not runnable).
func execStartError(err error) (int, error) {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "is not running"):
		return 126, errdefs.Conflict(err)
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127, errdefs.InvalidParameterf("OCI runtime exec failed: exec failed: unable to start container process: %s: unknown", msg)
	default:
		return 126, errdefs.InvalidParameterf("OCI runtime exec failed: exec failed: unable to start container process: %s: unknown", msg)
	}
}

// execProcess derives the exec's process from the container's own (its
// capabilities, rlimits, no_new_privs, user and environment), with the
// exec's command, environment, working directory, user and terminal.
func (d *Daemon) execProcess(c *Container, ec container.ExecCreateRequest) (*specs.Process, error) {
	data, err := os.ReadFile(filepath.Join(c.bundleDir(), "config.json"))
	if err != nil {
		return nil, fmt.Errorf("exec: read container config: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil || s.Process == nil || s.Root == nil {
		return nil, fmt.Errorf("exec: bad container config: %v", err)
	}
	p := *s.Process
	p.Args = append([]string(nil), ec.Cmd...)
	p.Terminal = ec.Tty
	p.ConsoleSize = nil
	if ec.ConsoleSize != nil && ec.ConsoleSize[0] > 0 && ec.ConsoleSize[1] > 0 {
		p.ConsoleSize = &specs.Box{Height: ec.ConsoleSize[0], Width: ec.ConsoleSize[1]}
	}
	p.Env = mergeEnv(p.Env, ec.Env)
	if ec.WorkingDir != "" {
		if !filepath.IsAbs(ec.WorkingDir) {
			return nil, errdefs.InvalidParameterf("the working directory '%s' is invalid, it needs to be an absolute path", ec.WorkingDir)
		}
		p.Cwd = ec.WorkingDir
	}
	if ec.User != "" {
		u, home, err := spec.ResolveUser(s.Root.Path, ec.User)
		if err != nil {
			return nil, err
		}
		p.User = u
		if !hasEnv(ec.Env, "HOME") && home != "" {
			p.Env = mergeEnv(p.Env, []string{"HOME=" + home})
		}
	}
	if ec.Privileged {
		all := spec.HostCaps()
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return &p, nil
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

// ContainerExecInspect implements api.ExecBackend.
func (d *Daemon) ContainerExecInspect(ctx context.Context, id string) (*container.ExecInspectResponse, error) {
	rec, err := d.execRecord(id)
	if err != nil {
		return nil, err
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	priv := rec.cfg.Privileged
	var exit *int
	if rec.exitCode != nil {
		v := *rec.exitCode
		exit = &v
	}
	args := []string{}
	if len(rec.cfg.Cmd) > 1 {
		args = rec.cfg.Cmd[1:]
	}
	return &container.ExecInspectResponse{
		ID:       rec.id,
		Running:  rec.running,
		ExitCode: exit,
		ProcessConfig: &container.ExecProcessConfig{
			Tty: rec.cfg.Tty, Entrypoint: rec.cfg.Cmd[0], Arguments: args, Privileged: &priv, User: rec.cfg.User,
		},
		OpenStdin:   rec.cfg.AttachStdin,
		OpenStderr:  rec.cfg.AttachStderr,
		OpenStdout:  rec.cfg.AttachStdout,
		ContainerID: rec.c.ID,
		DetachKeys:  []byte(rec.cfg.DetachKeys),
		Pid:         rec.pid,
	}, nil
}

// ContainerExecResize implements api.ExecBackend. A size asked for before
// the process exists is applied when it starts.
func (d *Daemon) ContainerExecResize(ctx context.Context, id string, height, width uint16) error {
	rec, err := d.execRecord(id)
	if err != nil {
		return err
	}
	rec.mu.Lock()
	running, cl := rec.running, rec.cl
	if !running {
		rec.size = &[2]uint16{height, width}
	}
	rec.mu.Unlock()
	if !running {
		if rec.exitCode != nil {
			return errdefs.Conflictf("Exec %s is not running", id)
		}
		return nil
	}
	return cl.ResizeExec(ctx, id, height, width)
}

// execSync runs cmd in c without a terminal and returns its exit code and
// up to max bytes of its combined output (health checks). ctx bounds the
// wait, not the process.
func (d *Daemon) execSync(ctx context.Context, c *Container, cmd []string, max int) (int, string, error) {
	if err := checkExecable(c); err != nil {
		return -1, "", err
	}
	c.mu.Lock()
	cl := c.shim
	c.mu.Unlock()
	proc, err := d.execProcess(c, container.ExecCreateRequest{Cmd: cmd})
	if err != nil {
		return -1, "", err
	}
	out := &limitedBuffer{max: max}
	id := newID()
	// Docker publishes a health probe's exec events too.
	event := func(action string, extra ...string) {
		attrs := map[string]string{"execID": id}
		for i := 0; i+1 < len(extra); i += 2 {
			attrs[extra[i]] = extra[i+1]
		}
		c.mu.Lock()
		d.containerEvent(c, eventtypes.Action(action), attrs)
		c.mu.Unlock()
	}
	event("exec_create: " + strings.Join(cmd, " "))
	event("exec_start: " + strings.Join(cmd, " "))
	pid, done, err := cl.Exec(context.WithoutCancel(ctx), shim.ExecConfig{ID: id, Process: proc}, shim.Streams{Stdout: out, Stderr: out})
	if err != nil {
		code, werr := execStartError(err)
		return code, werr.Error(), nil
	}
	select {
	case e := <-done:
		event("exec_die", "exitCode", fmt.Sprint(e.Status.Code))
		if e.Err != nil {
			return -1, out.String(), e.Err
		}
		return e.Status.Code, out.String(), nil
	case <-ctx.Done():
		// A probe over its time is killed, so that stuck probes do not pile up.
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		go func() {
			e := <-done
			event("exec_die", "exitCode", fmt.Sprint(e.Status.Code))
		}()
		return -1, out.String(), ctx.Err()
	}
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// execIDs lists the container's execs that are created or running, for
// inspect's ExecIDs (nil when none, as Docker shows null). It does not take
// c.mu (inspect holds it).
func (d *Daemon) execIDs(c *Container) []string {
	d.ctr.mu.Lock()
	defer d.ctr.mu.Unlock()
	var ids []string
	for id, rec := range d.ctr.execs {
		if rec.c != c {
			continue
		}
		rec.mu.Lock()
		live := rec.exitCode == nil
		rec.mu.Unlock()
		if live {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
