package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiClient talks to the suite's daemon over its socket, without a CLI
// process per call (a hundred docker processes would measure the CLI).
func (e *env) apiClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", e.sock)
		},
		MaxIdleConnsPerHost: 128,
	}, Timeout: 60 * time.Second}
}

func (e *env) api(c *http.Client, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://berth"+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// leakCounts is what a container run may leave behind.
type leakCounts struct {
	mounts, cgroups, shims, fds, goroutines int
}

func (e *env) leaks(t *testing.T, c *http.Client) leakCounts {
	t.Helper()
	var l leakCounts
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, e.dir) {
			l.mounts++
		}
	}
	parent := "berth-e2e-" + filepath.Base(e.dir)
	for _, base := range []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		ents, err := os.ReadDir(filepath.Join(base, parent))
		if err != nil {
			continue
		}
		for _, en := range ents {
			if en.IsDir() {
				l.cgroups++
			}
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		cmd, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		// The one waiting (--warm) shim the launcher keeps ready is no leak.
		if err == nil && bytes.Contains(cmd, []byte("__shim")) && bytes.Contains(cmd, []byte(e.dir)) && !bytes.Contains(cmd, []byte("--warm")) {
			l.shims++
		}
	}
	// Idle keep-alive connections would count as the daemon's.
	c.CloseIdleConnections()
	var info struct{ NFd, NGoroutines int }
	if err := e.api(c, "GET", "/info", nil, &info); err != nil {
		t.Fatal(err)
	}
	c.CloseIdleConnections()
	l.fds, l.goroutines = info.NFd, info.NGoroutines
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", e.daemon.Process.Pid)); err == nil {
		l.fds = len(fds)
	}
	return l
}

func TestSoakHundredContainers(t *testing.T) {
	e := need(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	const n = 100
	c := e.apiClient()
	// A first container warms caches (image config, shim pre-boot).
	e.ok(t, "run", "--rm", "busybox", "true")
	before := e.leaks(t, c)
	start := time.Now()
	ids := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var cr struct{ Id string }
			body := map[string]any{"Image": "busybox", "Cmd": []string{"sleep", "1000"}, "HostConfig": map[string]any{"NetworkMode": "none"}}
			if err := e.api(c, "POST", fmt.Sprintf("/containers/create?name=soak-%d", i), body, &cr); err != nil {
				errs <- err
				return
			}
			ids[i] = cr.Id
			if err := e.api(c, "POST", "/containers/"+cr.Id+"/start", nil, nil); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	started := time.Since(start)
	var running []struct{ Id string }
	e.api(c, "GET", "/containers/json?filters="+`%7B%22name%22%3A%5B%22soak-%22%5D%7D`, nil, &running)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if ids[i] == "" {
				return
			}
			if err := e.api(c, "POST", "/containers/"+ids[i]+"/stop?t=0", nil, nil); err != nil {
				errs <- err
			}
			if err := e.api(c, "DELETE", "/containers/"+ids[i], nil, nil); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(running) != n {
		t.Errorf("%d containers running after the concurrent start, want %d", len(running), n)
	}
	t.Logf("%d containers started in %v, stopped and removed in %v", n, started, time.Since(start)-started)
	// Goroutines and descriptors of finished requests settle shortly.
	var after leakCounts
	deadline := time.Now().Add(10 * time.Second)
	for {
		after = e.leaks(t, c)
		if after.mounts <= before.mounts && after.cgroups <= before.cgroups && after.shims <= before.shims &&
			after.fds <= before.fds+2 && after.goroutines <= before.goroutines+2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if after.mounts > before.mounts || after.cgroups > before.cgroups || after.shims > before.shims ||
		after.fds > before.fds+2 || after.goroutines > before.goroutines+2 {
		t.Errorf("left behind: before %+v, after %+v", before, after)
	}
}
