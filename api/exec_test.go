package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/errdefs"
)

// execFake adds exec, pause, top and stats to the route tests' fake: an
// exec echoes its stdin upper-cased on stdout, writes its command on
// stderr, and exits with len(Cmd).
type execFake struct {
	*fakeBackend
	mu      sync.Mutex
	execs   map[string]*container.ExecCreateRequest
	exits   map[string]int
	resizes map[string][2]uint16
	paused  map[string]bool
}

func (f *execFake) ContainerExecCreate(ctx context.Context, name string, req *container.ExecCreateRequest) (string, error) {
	if name == "stopped" {
		return "", errdefs.Conflictf("container %s is not running", name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := "exec" + string(rune('0'+len(f.execs)))
	f.execs[id] = req
	return id, nil
}

func (f *execFake) ContainerExecStart(ctx context.Context, id string, cfg ExecStartConfig) error {
	f.mu.Lock()
	req := f.execs[id]
	f.mu.Unlock()
	if req == nil {
		return errdefs.NotFoundf("No such exec instance: %s", id)
	}
	if req.Cmd[0] == "fail" {
		stdin, stdout, stderr, err := cfg.GetStreams(!req.Tty, req.DetachKeys)
		_, _, _ = stdin, stdout, stderr
		if err != nil {
			return err
		}
		return errdefs.InvalidParameterf("OCI runtime exec failed: exec failed: not found: unknown")
	}
	if !cfg.Detach {
		stdin, stdout, stderr, err := cfg.GetStreams(!req.Tty, req.DetachKeys)
		if err != nil {
			return err
		}
		in, _ := io.ReadAll(stdin)
		stdout.Write(bytes.ToUpper(in))
		stderr.Write([]byte(strings.Join(req.Cmd, " ")))
	}
	f.mu.Lock()
	f.exits[id] = len(req.Cmd)
	f.mu.Unlock()
	return nil
}

func (f *execFake) ContainerExecInspect(ctx context.Context, id string) (*container.ExecInspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	req := f.execs[id]
	if req == nil {
		return nil, errdefs.NotFoundf("No such exec instance: %s", id)
	}
	code, ok := f.exits[id]
	resp := &container.ExecInspectResponse{ID: id, Running: !ok, ProcessConfig: &container.ExecProcessConfig{Entrypoint: req.Cmd[0]}}
	if ok {
		resp.ExitCode = &code
	}
	return resp, nil
}

func (f *execFake) ContainerExecResize(ctx context.Context, id string, h, w uint16) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resizes[id] = [2]uint16{h, w}
	return nil
}

func (f *execFake) ContainerPause(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.paused[name] {
		return errdefs.Conflictf("Container %s is already paused", name)
	}
	f.paused[name] = true
	return nil
}

func (f *execFake) ContainerUnpause(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.paused[name] {
		return errdefs.Conflictf("Container %s is not paused", name)
	}
	delete(f.paused, name)
	return nil
}

func (f *execFake) ContainerTop(ctx context.Context, name, psArgs string) (*container.TopResponse, error) {
	return &container.TopResponse{Titles: []string{"PID", "ARGS"}, Processes: [][]string{{"1", psArgs}}}, nil
}

func (f *execFake) ContainerStats(ctx context.Context, name string, stream, oneShot bool, emit func(*container.StatsResponse) error) error {
	for i := 0; ; i++ {
		if err := emit(&container.StatsResponse{ID: name, PidsStats: container.PidsStats{Current: uint64(i + 1)}}); err != nil || !stream {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func startExecServer(t *testing.T) (*execFake, *client.Client) {
	t.Helper()
	dir, err := os.MkdirTemp("", "bapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := net.Listen("unix", filepath.Join(dir, "api.sock"))
	if err != nil {
		t.Fatal(err)
	}
	fb := &execFake{fakeBackend: newFakeBackend(), execs: map[string]*container.ExecCreateRequest{},
		exits: map[string]int{}, resizes: map[string][2]uint16{}, paused: map[string]bool{}}
	srv := New(fb, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	go srv.Serve(ctx, l)
	t.Cleanup(cancel)
	cli, err := client.New(client.WithHost("unix://"+filepath.Join(dir, "api.sock")), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return fb, cli
}

func TestClientExec(t *testing.T) {
	fb, cli := startExecServer(t)
	ctx := ctxT(t)
	created, err := cli.ExecCreate(ctx, "c1", client.ExecCreateOptions{Cmd: []string{"sh", "-c", "x"}, AttachStdin: true, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := cli.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res.Conn.Write([]byte("hello"))
	res.CloseWrite()
	var out, errb bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errb, res.Reader); err != nil {
		t.Fatal(err)
	}
	res.Close()
	if out.String() != "HELLO" || errb.String() != "sh -c x" {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
	insp, err := cli.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
	if err != nil || insp.ExitCode != 3 || insp.Running {
		t.Fatalf("inspect %+v %v", insp, err)
	}
	if _, err := cli.ExecResize(ctx, created.ID, client.ExecResizeOptions{Height: 24, Width: 80}); err != nil {
		t.Fatal(err)
	}
	fb.mu.Lock()
	if fb.resizes[created.ID] != [2]uint16{24, 80} {
		t.Errorf("resize %v", fb.resizes[created.ID])
	}
	fb.mu.Unlock()

	// Detached: a plain answer.
	d, _ := cli.ExecCreate(ctx, "c1", client.ExecCreateOptions{Cmd: []string{"true"}})
	if _, err := cli.ExecStart(ctx, d.ID, client.ExecStartOptions{Detach: true}); err != nil {
		t.Fatal(err)
	}
	// Errors: not running is 409, unknown exec is 404, a failed start is
	// written on the stream.
	if _, err := cli.ExecCreate(ctx, "stopped", client.ExecCreateOptions{Cmd: []string{"true"}}); !cerrdefs.IsConflict(err) {
		t.Errorf("exec into stopped: %v", err)
	}
	if _, err := cli.ExecInspect(ctx, "nosuch", client.ExecInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect unknown exec: %v", err)
	}
	f, _ := cli.ExecCreate(ctx, "c1", client.ExecCreateOptions{Cmd: []string{"fail"}, AttachStdout: true})
	fr, err := cli.ExecAttach(ctx, f.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	stdcopy.StdCopy(&out, io.Discard, fr.Reader)
	fr.Close()
	if out.String() != "OCI runtime exec failed: exec failed: not found: unknown\r\n" {
		t.Errorf("failed start on the stream: %q", out.String())
	}
}

func TestClientPauseTopStats(t *testing.T) {
	_, cli := startExecServer(t)
	ctx := ctxT(t)
	if _, err := cli.ContainerPause(ctx, "c1", client.ContainerPauseOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerPause(ctx, "c1", client.ContainerPauseOptions{}); !cerrdefs.IsConflict(err) {
		t.Errorf("second pause: %v", err)
	}
	if _, err := cli.ContainerUnpause(ctx, "c1", client.ContainerUnpauseOptions{}); err != nil {
		t.Fatal(err)
	}
	top, err := cli.ContainerTop(ctx, "c1", client.ContainerTopOptions{Arguments: []string{"aux"}})
	if err != nil || len(top.Processes) != 1 || top.Processes[0][1] != "aux" {
		t.Fatalf("top %+v %v", top, err)
	}
	res, err := cli.ContainerStats(ctx, "c1", client.ContainerStatsOptions{Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	dec := jsonDecoder(res.Body)
	for want := uint64(1); want <= 3; want++ {
		var s container.StatsResponse
		if err := dec.Decode(&s); err != nil || s.PidsStats.Current != want {
			t.Fatalf("sample %d: %+v %v", want, s.PidsStats, err)
		}
	}
	res.Body.Close()
	one, err := cli.ContainerStats(ctx, "c1", client.ContainerStatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(one.Body)
	one.Body.Close()
	if strings.Count(string(data), "\n") != 1 {
		t.Errorf("non-streamed stats: %q", data)
	}
}

func jsonDecoder(r io.Reader) *json.Decoder { return json.NewDecoder(r) }
