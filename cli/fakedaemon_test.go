package cli

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
)

// fakeDaemon speaks just enough of the Engine API (at version 1.41, like
// the dockerd the reference captures were taken from) to drive the CLI,
// and records every request it gets.
type fakeDaemon struct {
	t   *testing.T
	srv *http.Server
	ln  net.Listener

	mu         sync.Mutex
	requests   []string // "METHOD /path?query"
	createBody []byte
	stdinSeen  bytes.Buffer

	started  chan struct{} // closed by POST /start
	exitCode int
	tty      bool
	stdout   string
	stderr   string
	logs     []byte // raw logs stream body
	list     string // JSON for GET /containers/json
	startErr string // error message for POST /start (404/500 body)
	startSC  int
	missing  bool     // first create answers 404 No such image, until a pull
	images   string   // JSON for GET /images/json
	events   []string // JSON lines for GET /events
	imported []byte   // body of the last import
	info     string   // JSON for GET /info
}

const fakeID = "a088b1ce8fb22a074465f16fd20ecd84f330dbb8a47fc4d52cf88d13497b52d1"

func newFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDaemon{t: t, ln: ln, started: make(chan struct{}), stdout: "hi\n"}
	d.srv = &http.Server{Handler: http.HandlerFunc(d.serve)}
	go func() { _ = d.srv.Serve(ln) }()
	t.Cleanup(func() { _ = d.srv.Close() })
	return d
}

func (d *fakeDaemon) host() string { return "tcp://" + d.ln.Addr().String() }

func (d *fakeDaemon) log() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.requests...)
}

func (d *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	line := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		line += "?" + r.URL.RawQuery
	}
	d.mu.Lock()
	d.requests = append(d.requests, line)
	d.mu.Unlock()
	w.Header().Set("Api-Version", "1.41")
	w.Header().Set("Ostype", "linux")
	p := strings.TrimPrefix(r.URL.Path, "/v1.41")
	jsonReply := func(code int, v string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, v)
	}
	switch {
	case p == "/_ping":
		w.WriteHeader(http.StatusOK)
	case p == "/version":
		jsonReply(200, `{"Platform":{"Name":"fake"},"Components":[{"Name":"Engine","Version":"0.0.1","Details":{"ApiVersion":"1.41","MinAPIVersion":"1.12","GoVersion":"go1","GitCommit":"abc","BuildTime":"now","Os":"linux","Arch":"amd64","Experimental":"false"}}],"Version":"0.0.1","ApiVersion":"1.41","MinAPIVersion":"1.12","Os":"linux","Arch":"amd64"}`)
	case p == "/containers/create" && r.Method == http.MethodPost:
		body, _ := io.ReadAll(r.Body)
		d.mu.Lock()
		d.createBody = body
		missing := d.missing
		d.mu.Unlock()
		if missing {
			jsonReply(404, `{"message":"No such image: 127.0.0.1:5099/rsx/built:1"}`)
			return
		}
		jsonReply(201, `{"Id":"`+fakeID+`","Warnings":[]}`)
	case p == "/images/create" && r.URL.Query().Get("fromImage") != "":
		d.mu.Lock()
		d.missing = false
		d.mu.Unlock()
		jsonReply(200, `{"status":"Pulling from rsx/built","id":"1"}`+"\n"+`{"status":"Digest: sha256:abc"}`+"\n"+`{"status":"Status: Downloaded newer image for 127.0.0.1:5099/rsx/built:1"}`+"\n")
	case p == "/images/create" && r.URL.Query().Get("fromSrc") == "-":
		body, _ := io.ReadAll(r.Body)
		d.mu.Lock()
		d.imported = body
		d.mu.Unlock()
		jsonReply(200, `{"status":"sha256:2714e32610d69ba430e46aa1bbbefb4eca7242cd8cf643636941a2edf483368e"}`+"\n")
	case p == "/info":
		jsonReply(200, d.info)
	case p == "/images/json":
		jsonReply(200, d.images)
	case p == "/events":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		for _, e := range d.events {
			_, _ = io.WriteString(w, e+"\n")
		}
	case strings.HasSuffix(p, "/attach"):
		d.hijack(w, r)
	case strings.HasSuffix(p, "/wait"):
		// Headers go out at once (the CLI posts wait before start), the
		// body only when the container "exits".
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-d.started:
		case <-r.Context().Done():
			return
		}
		time.Sleep(20 * time.Millisecond) // exit after the output is written
		_ = json.NewEncoder(w).Encode(map[string]any{"StatusCode": d.exitCode, "Error": nil})
	case strings.HasSuffix(p, "/start"):
		if d.startErr != "" {
			jsonReply(d.startSC, `{"message":"`+d.startErr+`"}`)
			return
		}
		close(d.started)
		w.WriteHeader(http.StatusNoContent)
	case strings.HasSuffix(p, "/resize"):
		w.WriteHeader(200)
	case p == "/containers/json":
		jsonReply(200, d.list)
	case p == "/containers/nosuch" || strings.HasPrefix(p, "/containers/nosuch/"):
		jsonReply(404, `{"message":"No such container: nosuch"}`)
	case strings.HasPrefix(p, "/images/nosuch/"):
		jsonReply(404, `{"message":"No such image: nosuch"}`)
	case strings.HasSuffix(p, "/json") && strings.HasPrefix(p, "/containers/"):
		jsonReply(200, `{"Id":"`+fakeID+`","Name":"/web","State":{"Status":"running","Running":true,"ExitCode":0},"Config":{"Tty":`+boolJSON(d.tty)+`,"OpenStdin":false,"Image":"busybox"},"HostConfig":{"AutoRemove":false,"Memory":67108864}}`)
	case strings.HasSuffix(p, "/logs"):
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
		w.WriteHeader(200)
		_, _ = w.Write(d.logs)
	case strings.HasSuffix(p, "/stop") || strings.HasSuffix(p, "/kill") || strings.HasSuffix(p, "/restart"):
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodDelete && strings.HasPrefix(p, "/containers/"):
		w.WriteHeader(http.StatusNoContent)
	default:
		jsonReply(404, `{"message":"page not found"}`)
	}
}

func boolJSON(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// hijack answers the attach upgrade, then streams the container output
// (multiplexed unless tty) once start has been called.
func (d *fakeDaemon) hijack(w http.ResponseWriter, r *http.Request) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		d.t.Errorf("hijack: %v", err)
		return
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	select {
	case <-d.started:
	case <-time.After(5 * time.Second):
		return
	}
	if r.URL.Query().Get("stdin") == "1" {
		// Like `cat`: consume stdin up to the client's half-close first.
		data, _ := io.ReadAll(bufio.NewReader(buf))
		d.mu.Lock()
		d.stdinSeen.Write(data)
		d.mu.Unlock()
	}
	if d.tty {
		_, _ = io.WriteString(conn, d.stdout)
		return
	}
	if d.stdout != "" {
		_, _ = conn.Write(frame(stdcopy.Stdout, d.stdout))
	}
	if d.stderr != "" {
		_, _ = conn.Write(frame(stdcopy.Stderr, d.stderr))
	}
}

// runCLI runs berth with args against the fake daemon.
func runCLI(t *testing.T, d *fakeDaemon, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{
		In: strings.NewReader(stdin), Out: &out, Err: &errb, Version: "test",
		Getenv: func(k string) string {
			if k == "BERTH_HOST" {
				return d.host()
			}
			return ""
		},
	}
	root := newRoot(env)
	root.SetArgs(args)
	err = root.Execute()
	// What cmd/berth does with a status error.
	if _, ok := ExitCode(err); ok && err.Error() != "" {
		errb.WriteString(err.Error() + "\n")
	}
	return out.String(), errb.String(), err
}

// frame encodes one multiplexed-stream frame.
func frame(stream stdcopy.StdType, data string) []byte {
	h := []byte{byte(stream), 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[4:], uint32(len(data)))
	return append(h, data...)
}
