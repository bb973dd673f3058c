package api

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

// fakeBackend answers with canned data; routes only decode and encode, so
// a fake is how their wire behaviour is tested.
type fakeBackend struct {
	created *container.CreateRequest
	name    string
	waitCh  chan container.WaitResponse
	stdin   string
}

func (f *fakeBackend) Info(ctx context.Context) (*system.Info, error) {
	return &system.Info{OSType: "linux", Name: "fake"}, nil
}
func (f *fakeBackend) Version(ctx context.Context) system.VersionResponse {
	return system.VersionResponse{Version: "test", Os: "linux", Components: []system.ComponentVersion{{Name: "Engine", Version: "test"}}}
}
func (f *fakeBackend) SubscribeEvents(since, until time.Time, ef filters.Args) ([]events.Message, <-chan events.Message, func()) {
	return []events.Message{{Type: "container", Action: "start", Actor: events.Actor{ID: "abc"}}}, nil, func() {}
}
func (f *fakeBackend) ImportImage(ctx context.Context, src io.Reader, o ImportOptions) (string, error) {
	io.Copy(io.Discard, src)
	return "sha256:feed", nil
}
func (f *fakeBackend) Images(ctx context.Context, all bool, ef filters.Args) ([]image.Summary, error) {
	return []image.Summary{}, nil
}
func (f *fakeBackend) ImageInspect(ctx context.Context, name string) (*image.InspectResponse, error) {
	if name != "example.com/team/app:1" {
		return nil, errdefs.NotFoundf("No such image: %s", name)
	}
	return &image.InspectResponse{ID: "sha256:feed", RepoTags: []string{name}}, nil
}
func (f *fakeBackend) ImageHistory(ctx context.Context, name string) ([]image.HistoryResponseItem, error) {
	return nil, nil
}
func (f *fakeBackend) TagImage(ctx context.Context, name, repo, tag string) error { return nil }
func (f *fakeBackend) ImageDelete(ctx context.Context, name string, force, prune bool) ([]image.DeleteResponse, error) {
	return []image.DeleteResponse{{Untagged: name}}, nil
}
func (f *fakeBackend) ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error) {
	if name == "taken" {
		return container.CreateResponse{}, errdefs.Conflictf("Conflict. The container name \"/taken\" is already in use")
	}
	f.created, f.name = req, name
	return container.CreateResponse{ID: "c1"}, nil
}
func (f *fakeBackend) ContainerStart(ctx context.Context, name string) error {
	if name == "running" {
		return errdefs.NotModified(fmt.Errorf("already started"))
	}
	return nil
}
func (f *fakeBackend) ContainerStop(ctx context.Context, name, signal string, timeout *int) error {
	return nil
}
func (f *fakeBackend) ContainerKill(ctx context.Context, name, signal string) error { return nil }
func (f *fakeBackend) ContainerRestart(ctx context.Context, name, signal string, timeout *int) error {
	return nil
}
func (f *fakeBackend) ContainerWait(ctx context.Context, name string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	if name == "missing" {
		return nil, errdefs.NotFoundf("No such container: missing")
	}
	return f.waitCh, nil
}
func (f *fakeBackend) ContainerAttach(ctx context.Context, name string, cfg AttachConfig) error {
	stdin, stdout, stderr, err := cfg.GetStreams(true)
	if err != nil {
		return err
	}
	io.WriteString(stdout, "out\n")
	io.WriteString(stderr, "err\n")
	if stdin != nil {
		b, _ := io.ReadAll(stdin)
		io.WriteString(stdout, "stdin:"+string(b))
	}
	return nil
}
func (f *fakeBackend) ContainerResize(ctx context.Context, name string, h, w uint16) error {
	return nil
}
func (f *fakeBackend) ContainerLogs(ctx context.Context, name string, o LogsOptions) (<-chan LogMessage, bool, error) {
	ch := make(chan LogMessage, 2)
	ch <- LogMessage{Stream: "stdout", Line: []byte("a\n"), Time: time.Unix(1, 0)}
	ch <- LogMessage{Stream: "stderr", Line: []byte("b\n"), Time: time.Unix(2, 0)}
	close(ch)
	return ch, false, nil
}
func (f *fakeBackend) Containers(ctx context.Context, all bool, limit int, size bool, ef filters.Args) ([]container.Summary, error) {
	if err := ef.Validate("label", "status"); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	return nil, nil
}
func (f *fakeBackend) ContainerInspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error) {
	return nil, errdefs.NotFoundf("No such container: %s", name)
}
func (f *fakeBackend) ContainerRemove(ctx context.Context, name string, force, v bool) error {
	return errdefs.Conflictf("You cannot remove a running container %s", name)
}
func (f *fakeBackend) ContainersPrune(ctx context.Context, ef filters.Args) (*container.PruneReport, error) {
	return &container.PruneReport{}, nil
}

// serve runs the server on a unix socket and returns its path.
func serve(t *testing.T, b Backend) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go New(b, nil).Serve(ctx, l)
	return sock
}

func httpClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

func TestWireBasics(t *testing.T) {
	sock := serve(t, &fakeBackend{})
	hc := httpClient(sock)
	cases := []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"HEAD", "/_ping", "", 200, ""},
		{"GET", "/_ping", "", 200, "OK"},
		{"GET", "/v1.41/_ping", "", 200, "OK"},
		{"GET", "/v1.99/version", "", 400, "client version 1.99 is too new. Maximum supported API version is 1.50"},
		{"GET", "/v1.12/version", "", 400, "is too old"},
		{"GET", "/nope", "", 404, "page not found"},
		{"GET", "/v1.41/images/example.com/team/app:1/json", "", 200, `"Id":"sha256:feed"`},
		{"GET", "/images/other/json", "", 404, "No such image: other"},
		{"POST", "/containers/create?name=taken", `{"Image":"x"}`, 409, "already in use"},
		{"POST", "/containers/create", `{"Image":`, 400, "invalid JSON"},
		{"POST", "/containers/running/start", "", 304, ""},
		{"GET", "/containers/x/json", "", 404, "No such container: x"},
		{"DELETE", "/containers/x?force=0", "", 409, "running container"},
		{"GET", `/containers/json?filters={"bogus":{"x":true}}`, "", 400, "bogus"},
		{"GET", `/containers/json?filters={"label":["a=b"]}`, "", 200, "[]"},
		{"POST", "/containers/x/wait?condition=sometime", "", 400, "invalid condition"},
		{"POST", "/containers/missing/wait", "", 404, "No such container"},
		{"GET", "/events?since=0&until=1", "", 200, `"Action":"start"`},
		{"POST", "/images/create?fromSrc=-&repo=a", "tarbytes", 200, `{"status":"sha256:feed"}` + "\r\n"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, "http://berth"+tc.path, strings.NewReader(tc.body))
		if tc.body != "" && strings.HasPrefix(tc.body, "{") {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s %s: %d %q, want %d containing %q", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.contains)
		}
		if resp.Header.Get("Api-Version") != Version {
			t.Errorf("%s %s: Api-Version header %q", tc.method, tc.path, resp.Header.Get("Api-Version"))
		}
		if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: error Content-Type %q", tc.method, tc.path, resp.Header.Get("Content-Type"))
		}
	}
}

func TestMobyClientNegotiates(t *testing.T) {
	sock := serve(t, &fakeBackend{})
	c, err := client.New(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.ServerVersion(context.Background(), client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.APIVersion != Version || v.MinAPIVersion != MinVersion {
		t.Fatalf("version: %+v", v)
	}
	if got := c.ClientVersion(); got != Version {
		t.Fatalf("negotiated %q, want %s", got, Version)
	}
}

func TestWaitFlushesHeadersFirst(t *testing.T) {
	f := &fakeBackend{waitCh: make(chan container.WaitResponse, 1)}
	sock := serve(t, f)
	resp, err := httpClient(sock).Post("http://berth/containers/c1/wait?condition=next-exit", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Headers arrived although the container has not exited yet.
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	f.waitCh <- container.WaitResponse{StatusCode: 3}
	body, _ := io.ReadAll(resp.Body)
	if strings.TrimSpace(string(body)) != `{"StatusCode":3,"Error":null}` {
		t.Fatalf("wait body %q", body)
	}
}

func TestAttachHijackMultiplexed(t *testing.T) {
	sock := serve(t, &fakeBackend{})
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1.50/containers/c1/attach?stdin=1&stdout=1&stderr=1&stream=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello")
	conn.(*net.UnixConn).CloseWrite()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Content-Type") != "application/vnd.docker.multiplexed-stream" {
		t.Fatalf("attach response: %d %v", resp.StatusCode, resp.Header)
	}
	var got []string
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			break
		}
		p := make([]byte, binary.BigEndian.Uint32(hdr[4:]))
		io.ReadFull(br, p)
		got = append(got, fmt.Sprintf("%d:%s", hdr[0], p))
	}
	want := []string{"1:out\n", "2:err\n", "1:stdin:hello"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("frames %q, want %q", got, want)
	}
}

func TestLogsMultiplexedWithTimestamps(t *testing.T) {
	sock := serve(t, &fakeBackend{})
	resp, err := httpClient(sock).Get("http://berth/v1.41/containers/c1/logs?stdout=1&stderr=1&timestamps=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := "\x01\x00\x00\x00\x00\x00\x00\x17" + "1970-01-01T00:00:01Z a\n"
	if !strings.HasPrefix(string(body), want) || !strings.Contains(string(body), "1970-01-01T00:00:02Z b\n") {
		t.Fatalf("logs body %q", body)
	}
}

func TestCreateDecodesRequest(t *testing.T) {
	f := &fakeBackend{}
	sock := serve(t, f)
	body := `{"Image":"busybox","Cmd":["echo","hi"],"HostConfig":{"AutoRemove":true,"Memory":67108864}}`
	resp, err := httpClient(sock).Post("http://berth/containers/create?name=web", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var res container.CreateResponse
	json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if resp.StatusCode != 201 || res.ID != "c1" || res.Warnings == nil {
		t.Fatalf("create: %d %+v", resp.StatusCode, res)
	}
	if f.name != "web" || f.created.Config.Image != "busybox" || !f.created.HostConfig.AutoRemove || f.created.HostConfig.Memory != 64<<20 {
		t.Fatalf("decoded %q %+v %+v", f.name, f.created.Config, f.created.HostConfig)
	}
}

func FuzzCreateBody(f *testing.F) {
	f.Add([]byte(`{"Image":"busybox","Cmd":["true"]}`))
	f.Add([]byte(`{"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}`))
	f.Add([]byte(`[`))
	srv := New(&fakeBackend{}, nil).Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _ := http.NewRequest("POST", "/containers/create", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := &recorder{h: http.Header{}}
		srv.ServeHTTP(rec, req)
		if rec.code >= 500 {
			t.Fatalf("status %d for body %q", rec.code, body)
		}
	})
}

type recorder struct {
	h    http.Header
	code int
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return len(p), nil
}
func (r *recorder) WriteHeader(c int) { r.code = c }
