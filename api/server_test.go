package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// startServer serves a fake backend on a unix socket (as the daemon does)
// and returns a real moby client that negotiates the API version.
func startServer(t *testing.T) (*fakeBackend, *client.Client, string) {
	t.Helper()
	// Socket paths are limited to 108 bytes: keep the directory short.
	dir, err := os.MkdirTemp("", "bapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fb := newFakeBackend()
	srv := New(fb, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	cli, err := client.New(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return fb, cli, sock
}

// rawRequest sends one HTTP request over the socket and returns the response
// with its body read.
func rawRequest(t *testing.T, sock, method, path string, header http.Header, body string) (*http.Response, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}, Timeout: 10 * time.Second}
	req, err := http.NewRequest(method, "http://berth"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(b)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPingAndVersionNegotiation(t *testing.T) {
	_, cli, sock := startServer(t)
	ctx := ctxT(t)
	p, err := cli.Ping(ctx, client.PingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.APIVersion != Version || p.OSType != "linux" || p.Experimental {
		t.Errorf("ping = %+v", p)
	}
	if p.BuilderVersion != "1" {
		t.Errorf("builder version = %q", p.BuilderVersion)
	}
	v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.APIVersion != Version || v.MinAPIVersion != MinVersion || v.Version != "0.0.1-test" {
		t.Errorf("version = %+v", v)
	}
	if got := v.Components[0].Details["ApiVersion"]; got != Version {
		t.Errorf("engine component ApiVersion = %q", got)
	}
	if cli.ClientVersion() != Version {
		t.Errorf("client negotiated %q, want %q", cli.ClientVersion(), Version)
	}

	for _, method := range []string{"GET", "HEAD"} {
		for _, path := range []string{"/_ping", "/v1.41/_ping"} {
			resp, body := rawRequest(t, sock, method, path, nil, "")
			h := resp.Header
			want := map[string]string{
				"Api-Version": Version, "Ostype": "linux", "Docker-Experimental": "false",
				"Builder-Version": "1", "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
			}
			for k, v := range want {
				if h.Get(k) != v {
					t.Errorf("%s %s: header %s = %q, want %q", method, path, k, h.Get(k), v)
				}
			}
			if !strings.HasPrefix(h.Get("Server"), "Berth/") {
				t.Errorf("Server header = %q", h.Get("Server"))
			}
			wantBody := "OK"
			if method == "HEAD" {
				wantBody = ""
			}
			if resp.StatusCode != 200 || body != wantBody {
				t.Errorf("%s %s = %d %q", method, path, resp.StatusCode, body)
			}
		}
	}
}

func TestVersionBounds(t *testing.T) {
	_, _, sock := startServer(t)
	tests := []struct {
		path, msg string
		status    int
	}{
		{"/v1.99/version", "client version 1.99 is too new. Maximum supported API version is 1.50", 400},
		{"/v1.51/version", "client version 1.51 is too new. Maximum supported API version is 1.50", 400},
		{"/v1.23/version", "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version", 400},
		{"/v1.9/info", "client version 1.9 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version", 400},
		{"/v1.24/version", "", 200},
		{"/v1.50/version", "", 200},
		{"/version", "", 200},
	}
	for _, tt := range tests {
		resp, body := rawRequest(t, sock, "GET", tt.path, nil, "")
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d (%s)", tt.path, resp.StatusCode, tt.status, body)
			continue
		}
		if resp.Header.Get("Api-Version") != Version {
			t.Errorf("%s: Api-Version %q", tt.path, resp.Header.Get("Api-Version"))
		}
		if tt.msg != "" {
			var e errorResponse
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Message != tt.msg {
				t.Errorf("%s: body %q, want message %q", tt.path, body, tt.msg)
			}
		}
	}
}

func TestErrorResponses(t *testing.T) {
	fb, _, sock := startServer(t)
	fb.addContainer("running", false)
	if err := fb.ContainerStart(context.Background(), "running"); err != nil {
		t.Fatal(err)
	}
	fb.addContainer("stopped", false)
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name, method, path string
		header             http.Header
		body               string
		status             int
		msg                string // substring of the message; "" for no body
	}{
		{"unknown route", "GET", "/nope", nil, "", 404, "page not found"},
		{"unknown versioned route", "GET", "/v1.41/containers/x/nope", nil, "", 404, "page not found"},
		{"wrong method", "GET", "/containers/create", nil, "", 404, "page not found"},
		{"missing container", "GET", "/containers/ghost/json", nil, "", 404, "No such container: ghost"},
		{"missing image", "GET", "/images/ghost/json", nil, "", 404, "No such image: ghost"},
		{"missing image with slashes", "GET", "/v1.41/images/127.0.0.1:5000/a/ghost:1/json", nil, "", 404, "No such image: 127.0.0.1:5000/a/ghost:1"},
		{"image path without action", "GET", "/images/busybox", nil, "", 404, "page not found"},
		{"bad JSON", "POST", "/containers/create", jsonCT, `{"Image":`, 400, "invalid JSON"},
		{"unknown field", "POST", "/containers/create", jsonCT, `{"Image":"busybox","Bogus":1}`, 400, `unknown field "Bogus"`},
		{"trailing data", "POST", "/containers/create", jsonCT, `{"Image":"busybox"} {}`, 400, "unexpected content"},
		{"empty body", "POST", "/containers/create", jsonCT, ``, 400, "empty request body"},
		{"empty object", "POST", "/containers/create", jsonCT, `{}`, 400, "config cannot be empty"},
		{"wrong content type", "POST", "/containers/create", http.Header{"Content-Type": {"text/plain"}}, `{"Image":"busybox"}`, 400, "Content-Type specified (text/plain) must be 'application/json'"},
		{"wrong type of field", "POST", "/containers/create", jsonCT, `{"Image":"busybox","Cmd":7}`, 400, "invalid JSON"},
		{"name conflict", "POST", "/containers/create?name=running", jsonCT, `{"Image":"busybox"}`, 409, "already in use"},
		{"create with missing image", "POST", "/containers/create", jsonCT, `{"Image":"ghost"}`, 404, "No such image: ghost"},
		{"start running", "POST", "/containers/running/start", nil, "", 304, ""},
		{"stop stopped", "POST", "/containers/stopped/stop", nil, "", 304, ""},
		{"kill stopped", "POST", "/containers/stopped/kill", nil, "", 409, "is not running"},
		{"remove running", "DELETE", "/containers/running", nil, "", 409, "You cannot remove a running container"},
		{"bad stop timeout", "POST", "/containers/running/stop?t=soon", nil, "", 400, "not an integer"},
		{"bad limit", "GET", "/containers/json?limit=x", nil, "", 400, "not an integer"},
		{"bad filters", "GET", "/containers/json?filters=%7Bbad", nil, "", 400, "invalid filter"},
		{"unsupported filter", "GET", "/containers/json?filters=%7B%22color%22%3A%5B%22red%22%5D%7D", nil, "", 400, "invalid filter 'color'"},
		{"bad wait condition", "POST", "/containers/stopped/wait?condition=soon", nil, "", 400, "invalid condition"},
		{"wait missing", "POST", "/containers/ghost/wait", nil, "", 404, "No such container"},
		{"logs without streams", "GET", "/containers/stopped/logs", nil, "", 400, "you must choose at least one stream"},
		{"logs bad since", "GET", "/containers/stopped/logs?stdout=1&since=yesterday", nil, "", 400, "invalid timestamp"},
		{"attach missing", "POST", "/containers/ghost/attach?stream=1&stdout=1", nil, "", 404, "No such container"},
		{"attach bad detach keys", "POST", "/containers/stopped/attach?stream=1&stdin=1&detachKeys=ctrl-%7E%7E", nil, "", 400, "invalid detach keys"},
		{"events bad since", "GET", "/events?since=abc", nil, "", 400, "invalid timestamp"},
		{"events since after until", "GET", "/events?since=200&until=100", nil, "", 400, "cannot be after"},
		{"pull not supported", "POST", "/images/create?fromImage=busybox&tag=latest", nil, "", 404, "No such image: busybox:latest (berth cannot pull images yet)"},
		{"import from URL", "POST", "/images/create?fromSrc=http://example.com/x.tar", nil, "", 501, "not supported"},
		{"import empty", "POST", "/images/create?fromSrc=-", nil, "", 400, "empty tarball"},
		{"push not supported", "POST", "/images/127.0.0.1:5000/a/b/push?tag=1", nil, "", 501, "not supported"},
		{"legacy filter param", "GET", "/v1.40/images/json?filter=ghost&filters=%7B%22color%22%3A%5B%22x%22%5D%7D", nil, "", 400, "invalid filter 'color'"},
		{"tag without repo", "POST", "/images/busybox/tag", nil, "", 400, "repo"},
		{"delete missing image", "DELETE", "/images/ghost", nil, "", 404, "No such image"},
		{"remove link", "DELETE", "/containers/stopped?link=1", nil, "", 400, "links"},
		{"resize bad size", "POST", "/containers/running/resize?h=40&w=-1", nil, "", 400, "invalid resize"},
		{"resize stopped", "POST", "/containers/stopped/resize?h=40&w=100", nil, "", 409, "is not running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := rawRequest(t, sock, tt.method, tt.path, tt.header, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tt.status, body)
			}
			if tt.msg == "" {
				if body != "" {
					t.Errorf("body %q, want none", body)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want exactly application/json", ct)
			}
			var e errorResponse
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("body %q is not an error object: %v", body, err)
			}
			if !strings.Contains(e.Message, tt.msg) {
				t.Errorf("message %q, want it to contain %q", e.Message, tt.msg)
			}
		})
	}
}

func TestWaitFlushesHeadersBeforeExit(t *testing.T) {
	fb, _, sock := startServer(t)
	c := fb.addContainer("w", false)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /v1.41/containers/w/wait?condition=next-exit HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("headers did not arrive before the container ran: %v", err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("wait response %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Now run the container (as docker run does after the headers) and stop it.
	if err := fb.ContainerStart(context.Background(), "w"); err != nil {
		t.Fatal(err)
	}
	fb.exit(c, 3)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != `{"Error":null,"StatusCode":3}`+"\n" {
		t.Errorf("wait body %q", body)
	}
}

func TestRawFormsOfQueries(t *testing.T) {
	fb, _, sock := startServer(t)
	fb.addContainer("a", false)
	tests := []struct {
		query   string
		all     bool
		limit   int
		filters map[string][]string
	}{
		{"all=1", true, -1, nil},
		{"all=True&limit=-1", true, -1, nil},
		{"all=False&limit=3", false, 3, nil},
		{"all=0", false, -1, nil},
		{"all=yes", true, -1, nil},
		// docker-py's list form and the Go client's map form of filters.
		{`filters={"label":["a=b","c"],"status":["exited"]}`, false, -1, map[string][]string{"label": {"a=b", "c"}, "status": {"exited"}}},
		{`filters={"label":{"a=b":true},"name":{"x":true}}`, false, -1, map[string][]string{"label": {"a=b"}, "name": {"x"}}},
	}
	for _, tt := range tests {
		u := "/containers/json?" + strings.ReplaceAll(strings.ReplaceAll(tt.query, "{", "%7B"), "}", "%7D")
		u = strings.ReplaceAll(strings.ReplaceAll(u, `"`, "%22"), " ", "%20")
		resp, body := rawRequest(t, sock, "GET", u, nil, "")
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", tt.query, resp.StatusCode, body)
			continue
		}
		fb.mu.Lock()
		all, limit, f := fb.lastAll, fb.lastLimit, fb.lastFilter
		fb.mu.Unlock()
		if all != tt.all || limit != tt.limit {
			t.Errorf("%s: all=%v limit=%d, want %v %d", tt.query, all, limit, tt.all, tt.limit)
		}
		if f.Len() != len(tt.filters) {
			t.Errorf("%s: filters %v, want %v", tt.query, f, tt.filters)
		}
		for k, vs := range tt.filters {
			if got := strings.Join(f.Get(k), ","); got != strings.Join(vs, ",") {
				t.Errorf("%s: filter %s = %q, want %q", tt.query, k, got, vs)
			}
		}
		if !bytes.HasPrefix([]byte(body), []byte("[")) {
			t.Errorf("%s: list body %q", tt.query, body)
		}
	}
}
