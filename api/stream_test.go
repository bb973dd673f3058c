package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

// dialRaw sends a raw request and returns the connection and its reader
// positioned after the response headers.
func dialRaw(t *testing.T, sock, request string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn, br, resp
}

func TestAttachWithoutUpgradeIsPlain200(t *testing.T) {
	fb, _, sock := startServer(t)
	fb.addContainer("c", false)
	conn, br, resp := dialRaw(t, sock, "POST /v1.41/containers/c/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.docker.raw-stream" {
		t.Fatalf("response %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	want := "\x01\x00\x00\x00\x00\x00\x00\x04out\n\x02\x00\x00\x00\x00\x00\x00\x04err\n"
	if string(rest) != want {
		t.Errorf("stream %q, want %q", rest, want)
	}
	_ = conn
}

func TestAttachUpgradeHeadersMatchDocker(t *testing.T) {
	fb, _, sock := startServer(t)
	fb.addContainer("c", true)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "POST /v1.41/containers/c/attach?stderr=1&stdout=1&stream=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: Upgrade\r\nContent-Type: text/plain\r\nUpgrade: tcp\r\n\r\n")
	all, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	// Byte for byte what dockerd answered in the run-rm capture, then the output.
	want := "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nout\nerr\n"
	if string(all) != want {
		t.Errorf("got %q\nwant %q", all, want)
	}
}

func TestAttachDetachKeys(t *testing.T) {
	fb, _, sock := startServer(t)
	fb.addContainer("c", true)
	tests := []struct{ query, send, want string }{
		{"", "hi\x10\x11ignored", "hi"},
		{"&detachKeys=ctrl-a,x", "ab\x01xzz", "ab"},
	}
	for _, tt := range tests {
		conn, br, resp := dialRaw(t, sock, "POST /containers/c/attach?stream=1&stdin=1&stdout=1"+tt.query+" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
		if resp.StatusCode != 101 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		// No half-close: only the detach sequence may end the attach.
		io.WriteString(conn, tt.send)
		got, err := io.ReadAll(br)
		if err != nil {
			t.Fatalf("%q: %v", tt.query, err)
		}
		if string(got) != tt.want {
			t.Errorf("%q: output %q, want %q", tt.query, got, tt.want)
		}
	}
}

func TestEventsWireFormat(t *testing.T) {
	fb, _, sock := startServer(t)
	now := time.Now().Add(-10 * time.Second)
	fb.pastEvents = []events.Message{{
		Type: events.ContainerEventType, Action: "die", Scope: "local",
		Actor: events.Actor{ID: "abc", Attributes: map[string]string{"exitCode": "137", "image": "busybox:local", "name": "rsx-s"}},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	}, {
		Type: events.NetworkEventType, Action: "connect", Scope: "local",
		Actor: events.Actor{ID: "net1", Attributes: map[string]string{"name": "none"}},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	}}
	path := "/v1.41/events?since=" + itoa(now.Add(-time.Minute).Unix()) + "&until=" + itoa(now.Add(5*time.Second).Unix())
	resp, body := rawRequest(t, sock, "GET", path, nil, "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("events %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", body)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"status": "die", "id": "abc", "from": "busybox:local", "Type": "container", "Action": "die", "scope": "local"} {
		if first[k] != v {
			t.Errorf("field %s = %v, want %q (line %s)", k, first[k], v, lines[0])
		}
	}
	if !strings.HasPrefix(lines[0], `{"status":"die","id":"abc","from":"busybox:local","Type":"container"`) {
		t.Errorf("field order differs from Docker's: %s", lines[0])
	}
	if strings.Contains(lines[1], `"status"`) {
		t.Errorf("network events carry no legacy fields: %s", lines[1])
	}
}

func TestEventsUntilInFutureEnds(t *testing.T) {
	_, _, sock := startServer(t)
	until := time.Now().Add(1500 * time.Millisecond)
	start := time.Now()
	resp, _ := rawRequest(t, sock, "GET", "/events?until="+itoa(until.Unix())+".0", nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stream ended after %v", d)
	}
}

func TestAttachClientGoneEndsAttach(t *testing.T) {
	fb, _, sock := startServer(t)
	fb.addContainer("c", true)
	done := make(chan struct{})
	// Replace attach's behaviour: wait for the context (the client leaving).
	be := &ctxAttachBackend{fakeBackend: fb, done: done}
	srv := New(be, nil)
	ln, err := net.Listen("unix", sock+".2")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, ln)
	conn, _, resp := dialRaw(t, ln.Addr().String(), "POST /containers/c/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	conn.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("attach did not end after the client closed the connection")
	}
}

type ctxAttachBackend struct {
	*fakeBackend
	done chan struct{}
}

func (b *ctxAttachBackend) ContainerAttach(ctx context.Context, name string, cfg AttachConfig) error {
	_, stdout, _, err := cfg.GetStreams(false)
	if err != nil {
		return err
	}
	// A closed connection reads like a half-close, so it shows on the next
	// write: keep writing until the server cancels the attach.
	defer close(b.done)
	for {
		stdout.Write([]byte("tick\n"))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestServeShutdownCutsStreams(t *testing.T) {
	fb := newFakeBackend()
	fb.addContainer("c", true)
	fb.logLines = []LogMessage{{Stream: "stdout", Line: []byte("x\n")}}
	dir := t.TempDir()
	if len(dir) > 80 {
		t.Skip("temp dir too long for a unix socket")
	}
	ln, err := net.Listen("unix", dir+"/s")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- New(fb, nil).Serve(ctx, ln) }()
	sock := ln.Addr().String()

	_, evR, _ := dialRaw(t, sock, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	_, logR, _ := dialRaw(t, sock, "GET /containers/c/logs?stdout=1&follow=1 HTTP/1.1\r\nHost: x\r\n\r\n")
	_, attR, resp := dialRaw(t, sock, "POST /containers/c/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	if resp.StatusCode != 101 {
		t.Fatalf("attach status %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	for name, r := range map[string]*bufio.Reader{"events": evR, "logs": logR, "attach": attR} {
		done := make(chan error, 1)
		go func() { _, err := io.ReadAll(r); done <- err }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("%s stream still open after shutdown", name)
		}
	}
}
