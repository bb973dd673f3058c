package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// composeEnv runs `berth compose` in the example's directory with extra
// environment variables.
func (e *env) compose(t *testing.T, dir string, envs []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(e.berth, append([]string{"-H", "unix://" + e.sock, "compose"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(e.dockerEnv(), envs...)
	out, err := cmd.CombinedOutput()
	r := result{stdout: string(out)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

func getPage(t *testing.T, url string) string {
	t.Helper()
	for i := 0; i < 50; i++ {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer", url)
	return ""
}

// The example app: three services, two user networks, a named volume and
// a health-checked dependency, built from Dockerfiles.
func TestComposeExampleApp(t *testing.T) {
	e := need(t)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "examples", "compose")
	e.ok(t, "tag", "busybox", "localhost:5000/base/busybox:latest")
	project := uniq("cmp")
	port := freePort(t)
	envs := []string{fmt.Sprintf("WEB_PORT=%d", port)}
	c := func(args ...string) string {
		t.Helper()
		r := e.compose(t, dir, envs, append([]string{"-p", project}, args...)...)
		if r.code != 0 {
			t.Fatalf("compose %v: %s", args, r)
		}
		return r.stdout
	}
	defer e.compose(t, dir, envs, "-p", project, "down", "-v")
	c("up", "-d", "--wait")
	page := getPage(t, fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/index.cgi", port))
	if !strings.Contains(page, "hello from compose") || !strings.Contains(page, "starts=1") {
		t.Fatalf("page %q", page)
	}
	ps := c("ps")
	for _, svc := range []string{"store", "web", "poller"} {
		if !strings.Contains(ps, project+"-"+svc+"-1") {
			t.Fatalf("ps lacks %s:\n%s", svc, ps)
		}
	}
	if !strings.Contains(ps, "(healthy)") {
		t.Fatalf("ps does not show the store healthy:\n%s", ps)
	}
	// Unchanged: nothing recreated. One service changed: only it.
	if out := c("up", "-d"); strings.Contains(out, "Recreate") || strings.Contains(out, "Created") {
		t.Fatalf("up of an unchanged project recreated:\n%s", out)
	}
	envs = append(envs, "GREETING=changed greeting")
	out := c("up", "-d")
	if !strings.Contains(out, "Container "+project+"-web-1  Recreated") || strings.Contains(out, project+"-store-1  Recreated") || strings.Contains(out, project+"-poller-1  Recreated") {
		t.Fatalf("changing web's environment should recreate web only:\n%s", out)
	}
	if page := getPage(t, fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/index.cgi", port)); !strings.Contains(page, "changed greeting") {
		t.Fatalf("the recreated web still says %q", page)
	}
	port2 := freePort(t)
	envs = []string{fmt.Sprintf("WEB_PORT=%d", port2)}
	if out := c("up", "-d"); !strings.Contains(out, project+"-web-1  Recreated") {
		t.Fatalf("changing web's port should recreate it:\n%s", out)
	}
	// down and up again: the volume keeps the store's data.
	c("down")
	c("up", "-d", "--wait")
	if page := getPage(t, fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/index.cgi", port2)); !strings.Contains(page, "starts=2") {
		t.Fatalf("after down/up the store's volume was lost: %q", page)
	}
	if logs := c("logs", "--tail", "5", "store"); !strings.Contains(logs, project+"-store-1") || !strings.Contains(logs, "store started 2 time(s)") {
		t.Fatalf("logs:\n%s", logs)
	}
	if got := c("exec", "-T", "store", "cat", "/data/starts"); strings.TrimSpace(got) != "2" {
		t.Fatalf("exec: %q", got)
	}
	c("down", "-v")
	if left := e.ok(t, "ps", "-aq", "--filter", "label=com.docker.compose.project="+project); left != "" {
		t.Fatalf("containers left after down: %q", left)
	}
	for _, what := range [][]string{{"network", "ls", "-q", "--filter", "label=com.docker.compose.project=" + project}, {"volume", "ls", "-q", "--filter", "label=com.docker.compose.project=" + project}} {
		if left := e.ok(t, what...); left != "" {
			t.Fatalf("%s left after down -v: %q", what[0], left)
		}
	}
}

// Debian's docker-compose 1.29 (the Python client on the Docker SDK)
// drives the same app against berth.
func TestDockerComposeV1(t *testing.T) {
	e := need(t)
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose is not installed (apt-get install docker-compose)")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "examples", "compose")
	e.ok(t, "tag", "busybox", "localhost:5000/base/busybox:latest")
	project := strings.ReplaceAll(uniq("dc"), "-", "")
	port := freePort(t)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-p", project}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+e.sock, fmt.Sprintf("WEB_PORT=%d", port))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker-compose %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	defer exec.Command(bin, "-p", project, "down", "-v").Run()
	run("up", "-d")
	if page := getPage(t, fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/index.cgi", port)); !strings.Contains(page, "hello from compose") {
		t.Fatalf("page %q", page)
	}
	if ps := run("ps"); !strings.Contains(ps, project+"_web_1") || !strings.Contains(ps, "Up") {
		t.Fatalf("ps:\n%s", ps)
	}
	if logs := run("logs", "--no-color", "store"); !strings.Contains(logs, "store started") {
		t.Fatalf("logs:\n%s", logs)
	}
	if out := run("exec", "-T", "store", "cat", "/data/starts"); strings.TrimSpace(out) == "" {
		t.Fatal("exec printed nothing")
	}
	run("down", "-v")
	if left := e.ok(t, "ps", "-aq", "--filter", "label=com.docker.compose.project="+project); left != "" {
		t.Fatalf("containers left: %q", left)
	}
}

// Bad compose files are refused with a clear message and create nothing.
func TestComposeBadInput(t *testing.T) {
	e := need(t)
	for _, tc := range []struct{ name, yaml, want string }{
		{"invalid yaml", "services:\n  a: [\n", "yaml"},
		{"unknown key", "services:\n  a:\n    image: busybox\n    bogus: 1\n", "bogus"},
		{"cycle", "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n", "cycle"},
		{"interpolation", "services:\n  a:\n    image: ${NOPE:?must be set}\n", "must be set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			project := uniq("bad")
			r := e.compose(t, dir, nil, "-p", project, "up", "-d")
			if r.code == 0 || !strings.Contains(strings.ToLower(r.stdout), tc.want) {
				t.Fatalf("compose up: %s (want an error mentioning %q)", r, tc.want)
			}
			if left := e.ok(t, "network", "ls", "-q", "--filter", "label=com.docker.compose.project="+project); left != "" {
				t.Fatalf("networks created: %q", left)
			}
		})
	}
}
