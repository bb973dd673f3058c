package e2e

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A docker pull whose client goes away mid-download leaves nothing half
// written in the daemon's store, and the next pull completes.
func TestPullInterruptedByClient(t *testing.T) {
	e := need(t)
	reg := startRegistry(t, e)
	name := uniq("intr")
	ref := reg + "/" + name + ":1"
	e.ok(t, "tag", "busybox", ref)
	// Pushes and pulls record "repo@digest" references on busybox's image:
	// remove them, or other tests would see them.
	t.Cleanup(func() {
		out := e.docker(t, "", "image", "inspect", "-f", "{{range .RepoDigests}}{{println .}}{{end}}", "busybox").stdout
		for _, d := range strings.Fields(out) {
			if strings.Contains(d, name) {
				e.docker(t, "", "rmi", d)
			}
		}
	})
	e.ok(t, "push", ref)
	id := strings.TrimSpace(e.ok(t, "image", "inspect", "-f", "{{.Id}}", ref))
	e.ok(t, "rmi", ref)

	// A loopback front of the registry whose layer downloads stall while
	// stall is set.
	var stall atomic.Bool
	stall.Store(true)
	target, _ := url.Parse("http://" + reg)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stall.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && !strings.Contains(r.URL.Path, strings.TrimPrefix(id, "sha256:")) {
			w.Header().Set("Content-Length", "100000000")
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	front := startFront(t, srv)
	fref := front + strings.TrimPrefix(ref, reg)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerBin, "pull", fref)
	cmd.Env = e.dockerEnv()
	if err := cmd.Run(); err == nil {
		t.Fatal("the stalled pull finished")
	}
	store := filepath.Join(e.dir, "data", "image")
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := partial(store)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned pull left %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := e.docker(t, "", "image", "inspect", fref); r.code == 0 {
		t.Fatal("the abandoned pull left an image")
	}
	stall.Store(false)
	e.ok(t, "pull", fref)
	if got := strings.TrimSpace(e.ok(t, "image", "inspect", "-f", "{{.Id}}", fref)); got != id {
		t.Fatalf("pulled %s, want %s", got, id)
	}
	e.ok(t, "rmi", fref)
}

// partial lists ingest files and temporary snapshot dirs of a store.
func partial(store string) []string {
	var out []string
	if ents, err := os.ReadDir(filepath.Join(store, "content", "ingest")); err == nil {
		for _, en := range ents {
			out = append(out, "content/ingest/"+en.Name())
		}
	}
	if ents, err := os.ReadDir(filepath.Join(store, "overlay")); err == nil {
		for _, en := range ents {
			if strings.HasPrefix(en.Name(), "tmp-") {
				out = append(out, "overlay/"+en.Name())
			}
		}
	}
	return out
}

// startFront serves srv on a free loopback port.
func startFront(t *testing.T, srv *http.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}
