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
	// Without the docker CLI docker-compose execs through docker-py, whose
	// exec create body carries a legacy Container field.
	sdk := exec.Command(bin, "-p", project, "exec", "-T", "store", "sh", "-c", "cat /data/starts; exit 5")
	sdk.Dir = dir
	sdk.Env = append(os.Environ(), "DOCKER_HOST=unix://"+e.sock, fmt.Sprintf("WEB_PORT=%d", port), "COMPOSE_INTERACTIVE_NO_CLI=1")
	out, err := sdk.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("docker-compose exec through the SDK: %v\n%s", err, out)
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

// The other commands on a small project of plain busybox services: scale,
// run, exec exit codes, stop/start/restart, top, images, config, orphans.
func TestComposeCommands(t *testing.T) {
	e := need(t)
	dir := t.TempDir()
	yaml := `
services:
  app:
    image: busybox
    command: ["sh", "-c", "echo app up; trap 'exit 0' TERM; while true; do sleep 1; done"]
    environment: [WHO=app]
  job:
    image: busybox
    command: ["sh", "-c", "echo job ran"]
  debug:
    image: busybox
    profiles: [dev]
    command: ["sleep", "1000"]
`
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	project := uniq("cmd")
	c := func(args ...string) result {
		t.Helper()
		return e.compose(t, dir, nil, append([]string{"-p", project}, args...)...)
	}
	ok := func(args ...string) string {
		t.Helper()
		r := c(args...)
		if r.code != 0 {
			t.Fatalf("compose %v: %s", args, r)
		}
		return r.stdout
	}
	defer c("down", "-v", "--remove-orphans", "-t", "1")

	ok("up", "-d", "--scale", "app=2")
	ps := ok("ps", "--format", "{{.Name}} {{.Service}}")
	for _, want := range []string{project + "-app-1 app", project + "-app-2 app"} {
		if !strings.Contains(ps, want) {
			t.Fatalf("ps lacks %q:\n%s", want, ps)
		}
	}
	if strings.Contains(ps, "debug") {
		t.Fatalf("a service of a disabled profile was started:\n%s", ps)
	}
	if all := ok("ps", "-a", "--services"); !strings.Contains(all, "job") {
		t.Fatalf("ps -a --services: %q", all)
	}
	if labels := strings.TrimSpace(e.ok(t, "inspect", "-f", `{{index .Config.Labels "com.docker.compose.container-number"}} {{index .Config.Labels "com.docker.compose.oneoff"}} {{index .Config.Labels "com.docker.compose.project"}}`, project+"-app-2")); labels != "2 False "+project {
		t.Fatalf("labels of app-2: %q", labels)
	}
	if r := c("exec", "-T", "app", "sh", "-c", "echo $WHO; exit 7"); r.code != 7 || !strings.Contains(r.stdout, "app") {
		t.Fatalf("exec: %s", r)
	}
	if out := ok("run", "--rm", "-T", "job", "sh", "-c", "echo one-off $((6*7))"); !strings.Contains(out, "one-off 42") {
		t.Fatalf("run: %q", out)
	}
	if left := e.ok(t, "ps", "-aq", "--filter", "label=com.docker.compose.oneoff=True", "--filter", "label=com.docker.compose.project="+project); left != "" {
		t.Fatalf("run --rm left %q", left)
	}
	if r := c("run", "--rm", "-T", "job", "sh", "-c", "exit 3"); r.code != 3 {
		t.Fatalf("run exit code: %s", r)
	}
	if top := ok("top", "app"); !strings.Contains(top, project+"-app-1") || !strings.Contains(top, "PID") {
		t.Fatalf("top:\n%s", top)
	}
	if imgs := ok("images"); !strings.Contains(imgs, "busybox") || !strings.Contains(imgs, project+"-app-1") {
		t.Fatalf("images:\n%s", imgs)
	}
	if cfg := ok("config", "--services"); strings.Fields(cfg)[0] != "app" {
		t.Fatalf("config --services: %q", cfg)
	}
	ok("stop", "-t", "1", "app")
	if ps := ok("ps", "-q", "app"); ps != "" {
		t.Fatalf("stop left running: %q", ps)
	}
	ok("start", "app")
	ok("restart", "-t", "1", "app")
	if ps := strings.Fields(ok("ps", "-q", "app")); len(ps) != 2 {
		t.Fatalf("after start/restart %d running", len(ps))
	}
	if logs := ok("logs", "app"); !strings.Contains(logs, project+"-app-1  | app up") {
		t.Fatalf("logs prefix:\n%s", logs)
	}
	// Dropping a service from the file leaves an orphan: up warns, and
	// --remove-orphans removes it.
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(strings.Split(yaml, "  job:")[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := ok("up", "-d", "--scale", "app=1"); !strings.Contains(out, "Found orphan containers") || !strings.Contains(out, project+"-app-2  Removed") {
		t.Fatalf("up after dropping job:\n%s", out)
	}
	ok("up", "-d", "--remove-orphans")
	if left := e.ok(t, "ps", "-aq", "--filter", "name="+project+"-job"); left != "" {
		t.Fatalf("orphan kept: %q", left)
	}
}
