package api

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// These tests drive the server with the real moby client: what it accepts
// is what the docker CLI accepts.

func TestClientImages(t *testing.T) {
	fb, cli, _ := startServer(t)
	ctx := ctxT(t)

	rc, err := cli.ImageImport(ctx, client.ImageImportSource{Source: strings.NewReader("fake tar"), SourceName: "-"},
		"127.0.0.1:5000/team/base:v1", client.ImageImportOptions{
			Changes:  []string{"CMD [\"sh\"]", "ENV A=1"},
			Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		})
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), `{"status":"sha256:`) || !strings.HasSuffix(string(out), "\"}\r\n") {
		t.Errorf("import stream %q", out)
	}
	fb.mu.Lock()
	opts, data := fb.imported[0], fb.importData[0]
	fb.mu.Unlock()
	if string(data) != "fake tar" {
		t.Errorf("backend got body %q", data)
	}
	if opts.Repo != "127.0.0.1:5000/team/base" || opts.Tag != "v1" || len(opts.Changes) != 2 ||
		opts.Changes[1] != "ENV A=1" || opts.Message != "Imported from -" || opts.Platform != "linux/amd64" {
		t.Errorf("import options %+v", opts)
	}

	list, err := cli.ImageList(ctx, client.ImageListOptions{All: true, Filters: make(client.Filters).Add("reference", "127.0.0.1:5000/team/base:v1")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].RepoTags[0] != "127.0.0.1:5000/team/base:v1" {
		t.Errorf("image list %+v", list.Items)
	}
	fb.mu.Lock()
	all := fb.lastAll
	fb.mu.Unlock()
	if !all {
		t.Error("all=1 not passed to the backend")
	}

	// Names with slashes and a port reach inspect, history, tag and delete whole.
	name := "127.0.0.1:5000/team/base:v1"
	insp, err := cli.ImageInspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if insp.RepoTags[0] != name {
		t.Errorf("inspect %+v", insp.InspectResponse)
	}
	hist, err := cli.ImageHistory(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Items) != 1 || hist.Items[0].CreatedBy != "import "+name {
		t.Errorf("history %+v", hist.Items)
	}
	if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: name, Target: "localhost/other/name:2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ImageInspect(ctx, "localhost/other/name:2"); err != nil {
		t.Errorf("tagged image not found: %v", err)
	}
	rm, err := cli.ImageRemove(ctx, "localhost/other/name:2", client.ImageRemoveOptions{PruneChildren: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rm.Items) != 2 || rm.Items[0].Untagged != "localhost/other/name:2" || rm.Items[1].Deleted == "" {
		t.Errorf("remove %+v", rm.Items)
	}
	rm, err = cli.ImageRemove(ctx, name, client.ImageRemoveOptions{PruneChildren: false, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ImageInspect(ctx, "ghost"); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect of a missing image: %v, want not found", err)
	}
}

func TestClientContainerLifecycle(t *testing.T) {
	fb, cli, _ := startServer(t)
	ctx := ctxT(t)
	cr, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   "web",
		Config: &container.Config{Image: "busybox", Cmd: []string{"echo", "hi"}, Labels: map[string]string{"a": "b"}},
		HostConfig: &container.HostConfig{AutoRemove: true, NetworkMode: "none", Resources: container.Resources{
			Memory: 64 << 20, NanoCPUs: 5e8,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cr.ID) != 64 || cr.Warnings == nil {
		t.Errorf("create result %+v", cr)
	}
	fb.mu.Lock()
	req, name := fb.lastCreate, fb.lastName
	fb.mu.Unlock()
	if name != "web" || req.Cmd[1] != "hi" || req.Labels["a"] != "b" || !req.HostConfig.AutoRemove ||
		req.HostConfig.Memory != 64<<20 || req.HostConfig.NanoCPUs != 5e8 || string(req.HostConfig.NetworkMode) != "none" {
		t.Errorf("backend got %q %+v %+v", name, req.Config, req.HostConfig)
	}

	if _, err := cli.ContainerStart(ctx, "web", client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	// Starting again is 304, which the client treats as success.
	if _, err := cli.ContainerStart(ctx, "web", client.ContainerStartOptions{}); err != nil {
		t.Errorf("second start: %v", err)
	}
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).Add("name", "web")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Names[0] != "/web" {
		t.Errorf("list %+v", list.Items)
	}
	insp, err := cli.ContainerInspect(ctx, "web", client.ContainerInspectOptions{Size: true})
	if err != nil {
		t.Fatal(err)
	}
	if insp.Container.ID != cr.ID || insp.Container.SizeRw == nil || *insp.Container.SizeRw != 42 {
		t.Errorf("inspect %+v", insp.Container)
	}

	if _, err := cli.ContainerResize(ctx, "web", client.ContainerResizeOptions{Height: 40, Width: 100}); err != nil {
		t.Fatal(err)
	}
	if fb.lastResize != [2]uint16{40, 100} {
		t.Errorf("resize got %v", fb.lastResize)
	}
	timeout := 7
	if _, err := cli.ContainerStop(ctx, "web", client.ContainerStopOptions{Signal: "SIGUSR1", Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	fb.mu.Lock()
	sig, to := fb.lastStop.signal, fb.lastStop.timeout
	fb.mu.Unlock()
	if sig != "SIGUSR1" || to == nil || *to != 7 {
		t.Errorf("stop got signal %q timeout %v", sig, to)
	}
	if _, err := cli.ContainerRestart(ctx, "web", client.ContainerRestartOptions{}); err != nil {
		t.Fatal(err)
	}
	fb.mu.Lock()
	to = fb.lastStop.timeout
	fb.mu.Unlock()
	if to != nil {
		t.Errorf("restart without t passed timeout %d", *to)
	}
	if _, err := cli.ContainerKill(ctx, "web", client.ContainerKillOptions{Signal: "HUP"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerKill(ctx, "web", client.ContainerKillOptions{}); !cerrdefs.IsConflict(err) {
		t.Errorf("kill of a stopped container: %v, want conflict", err)
	}
	fb.addContainer("old", false)
	pr, err := cli.ContainerPrune(ctx, client.ContainerPruneOptions{Filters: make(client.Filters).Add("until", "1h")})
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Report.ContainersDeleted) != 2 {
		t.Errorf("prune %+v", pr.Report)
	}
	if got := fb.lastFilter.Get("until"); len(got) != 1 || got[0] != "1h" {
		t.Errorf("prune filters %v", fb.lastFilter)
	}
	if _, err := cli.ContainerRemove(ctx, "web", client.ContainerRemoveOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("remove of a pruned container: %v, want not found", err)
	}
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil || info.Info.OSType != "linux" {
		t.Errorf("info %+v %v", info.Info, err)
	}
}

func TestClientWaitConditions(t *testing.T) {
	fb, cli, _ := startServer(t)
	ctx := ctxT(t)
	wait := func(name string, cond container.WaitCondition) client.ContainerWaitResult {
		return cli.ContainerWait(ctx, name, client.ContainerWaitOptions{Condition: cond})
	}
	expect := func(res client.ContainerWaitResult, code int64, errMsg string) {
		t.Helper()
		select {
		case r := <-res.Result:
			if r.StatusCode != code {
				t.Errorf("status %d, want %d", r.StatusCode, code)
			}
			if (r.Error == nil) != (errMsg == "") || (r.Error != nil && r.Error.Message != errMsg) {
				t.Errorf("error %+v, want %q", r.Error, errMsg)
			}
		case err := <-res.Error:
			t.Fatalf("wait: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("wait did not return")
		}
	}
	notReady := func(res client.ContainerWaitResult) {
		t.Helper()
		select {
		case r := <-res.Result:
			t.Fatalf("wait returned early: %+v", r)
		case err := <-res.Error:
			t.Fatalf("wait failed early: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}

	// not-running on a created container answers at once.
	c := fb.addContainer("c", false)
	expect(wait("c", ""), 0, "")

	// next-exit: the container starts after the wait (docker run's order).
	res := wait("c", container.WaitConditionNextExit)
	notReady(res)
	fb.ContainerStart(ctx, "c")
	notReady(res)
	fb.exit(c, 3)
	expect(res, 3, "")

	// not-running on a running container waits for its exit; the Error field comes through.
	fb.ContainerStart(ctx, "c")
	res = wait("c", container.WaitConditionNotRunning)
	notReady(res)
	fb.exit(c, 99)
	expect(res, 99, "boom")

	// removed waits for the removal.
	res = wait("c", container.WaitConditionRemoved)
	notReady(res)
	if _, err := cli.ContainerRemove(ctx, "c", client.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(res, 99, "boom")

	res = wait("ghost", "")
	select {
	case err := <-res.Error:
		if !cerrdefs.IsNotFound(err) {
			t.Errorf("wait on a missing container: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no error for a missing container")
	}
}

func TestClientAttach(t *testing.T) {
	for _, tty := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "tty"}[tty]
		t.Run(name, func(t *testing.T) {
			fb, cli, _ := startServer(t)
			ctx := ctxT(t)
			fb.addContainer(name, tty)
			att, err := cli.ContainerAttach(ctx, name, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
			if err != nil {
				t.Fatal(err)
			}
			defer att.Close()
			wantCT := "application/vnd.docker.multiplexed-stream"
			if tty {
				wantCT = "application/vnd.docker.raw-stream"
			}
			if ct, _ := att.MediaType(); ct != wantCT {
				t.Errorf("media type %q, want %q", ct, wantCT)
			}
			if _, err := io.WriteString(att.Conn, "hello\n"); err != nil {
				t.Fatal(err)
			}
			// Half-close stdin as the CLI does: output must keep flowing.
			if err := att.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if tty {
				_, err = io.Copy(&stdout, att.Reader)
			} else {
				_, err = stdcopy.StdCopy(&stdout, &stderr, att.Reader)
			}
			if err != nil {
				t.Fatal(err)
			}
			if tty {
				if stdout.String() != "hello\nbye\n" {
					t.Errorf("tty output %q", stdout.String())
				}
				return
			}
			if stdout.String() != "hello\n" || stderr.String() != "bye\n" {
				t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
			}
		})
	}
}

func TestClientAttachOldVersionIsRawStream(t *testing.T) {
	fb, _, sock := startServer(t)
	fb.addContainer("old", false)
	cli, err := client.New(client.WithHost("unix://"+sock), client.WithAPIVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	att, err := cli.ContainerAttach(ctxT(t), "old", client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if ct, _ := att.MediaType(); ct != "application/vnd.docker.raw-stream" {
		t.Errorf("API 1.41 media type %q", ct)
	}
	// docker run half-closes at once when stdin is not attached; output
	// produced afterwards must still arrive.
	if err := att.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
}

func TestClientLogs(t *testing.T) {
	fb, cli, _ := startServer(t)
	ctx := ctxT(t)
	ts := time.Date(2026, 11, 22, 14, 53, 40, 5, time.UTC)
	fb.logLines = []LogMessage{
		{Stream: "stdout", Line: []byte("line1\n"), Time: ts},
		{Stream: "stderr", Line: []byte("oops\n"), Time: ts},
		{Stream: "stdout", Line: []byte("line2\n"), Time: ts},
	}
	fb.addContainer("plain", false)
	fb.addContainer("tty", true)

	rc, err := cli.ContainerLogs(ctx, "plain", client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Since: "1795365000.5", Tail: "2"})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	stamp := "2026-11-22T14:53:40.000000005Z "
	if stdout.String() != stamp+"line1\n"+stamp+"line2\n" || stderr.String() != stamp+"oops\n" {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
	fb.mu.Lock()
	opts := fb.lastLogs
	fb.mu.Unlock()
	if opts.Tail != "2" || !opts.Since.Equal(time.Unix(1795365000, 5e8)) || opts.Follow || !opts.Until.IsZero() {
		t.Errorf("logs options %+v", opts)
	}

	rc, err = cli.ContainerLogs(ctx, "tty", client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != "line1\noops\nline2\n" {
		t.Errorf("tty logs %q", raw)
	}
	fb.mu.Lock()
	if fb.lastLogs.Tail != "all" {
		t.Errorf("default tail %q, want all", fb.lastLogs.Tail)
	}
	fb.mu.Unlock()

	// follow: lines arrive as they are produced, and the stream ends when the client leaves.
	fctx, cancel := context.WithCancel(ctx)
	rc, err = cli.ContainerLogs(fctx, "plain", client.ContainerLogsOptions{ShowStdout: true, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 8+len("line1\n"))
	if _, err := io.ReadFull(rc, hdr); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 1 || string(hdr[8:]) != "line1\n" {
		t.Errorf("first followed frame %q", hdr)
	}
	cancel()
	rc.Close()
}

func TestClientEvents(t *testing.T) {
	fb, cli, _ := startServer(t)
	ctx := ctxT(t)
	now := time.Now()
	msg := func(action events.Action, at time.Time) events.Message {
		return events.Message{Type: events.ContainerEventType, Action: action, Scope: "local",
			Actor: events.Actor{ID: "abc", Attributes: map[string]string{"image": "busybox", "name": "web"}},
			Time:  at.Unix(), TimeNano: at.UnixNano()}
	}
	fb.pastEvents = []events.Message{msg("create", now.Add(-time.Hour)), msg("start", now.Add(-time.Minute))}

	// until in the past: only the stored events, then the stream ends.
	since := now.Add(-2 * time.Hour).Unix()
	until := now.Add(-30 * time.Second).Unix()
	res := cli.Events(ctx, client.EventsListOptions{Since: itoa(since), Until: itoa(until), Filters: make(client.Filters).Add("container", "web")})
	var got []events.Action
	for done := false; !done; {
		select {
		case m := <-res.Messages:
			got = append(got, m.Action)
		case err := <-res.Err:
			if err != io.EOF {
				t.Fatalf("events: %v", err)
			}
			done = true
		case <-time.After(5 * time.Second):
			t.Fatal("events with until in the past did not end")
		}
	}
	if len(got) != 2 || got[0] != "create" || got[1] != "start" {
		t.Errorf("past events %v", got)
	}
	if c := fb.lastFilter.Get("container"); len(c) != 1 || c[0] != "web" {
		t.Errorf("filters %v", fb.lastFilter)
	}

	// live: each event is flushed as it happens.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res = cli.Events(lctx, client.EventsListOptions{})
	for i, action := range []events.Action{"die", "destroy"} {
		fb.liveEvents <- msg(action, time.Now())
		select {
		case m := <-res.Messages:
			if m.Action != action || m.Actor.Attributes["name"] != "web" {
				t.Errorf("live event %d = %+v", i, m)
			}
		case err := <-res.Err:
			t.Fatal(err)
		case <-time.After(5 * time.Second):
			t.Fatalf("live event %s not delivered", action)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestClientImageRemoveNoPrune(t *testing.T) {
	_, cli, _ := startServer(t)
	// The Go client sends noprune=1 unless PruneChildren is set.
	rm, err := cli.ImageRemove(ctxT(t), "busybox:latest", client.ImageRemoveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rm.Items) != 1 || rm.Items[0].Untagged != "busybox:latest" {
		t.Errorf("remove with noprune %+v", rm.Items)
	}
}
