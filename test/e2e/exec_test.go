package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runSleeper starts a long-running busybox container and removes it at the end.
func runSleeper(t *testing.T, e *env, args ...string) string {
	t.Helper()
	full := append([]string{"run", "-d"}, args...)
	full = append(full, "busybox", "sleep", "600")
	id := strings.TrimSpace(e.ok(t, full...))
	t.Cleanup(func() { e.docker(t, "", "rm", "-f", id) })
	return id
}

func TestExec(t *testing.T) {
	e := need(t)
	id := runSleeper(t, e, "-e", "FROMRUN=1")
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantOut  string
		wantErr  string // in stdout or stderr
		wantCode int
	}{
		{name: "output and exit code", args: []string{"sh", "-c", "echo out; echo err >&2; exit 5"}, wantOut: "out\n", wantErr: "err", wantCode: 5},
		{name: "env", args: []string{"-e", "FOO=bar", "sh", "-c", "echo $FOO $FROMRUN"}, wantOut: "bar 1\n"},
		{name: "user", args: []string{"-u", "user", "id"}, wantOut: "uid=1000(user) gid=1000(user) groups=1000(user),2000(extra)\n"},
		{name: "uid:gid", args: []string{"-u", "65534:65534", "sh", "-c", "id -u; id -g"}, wantOut: "65534\n65534\n"},
		{name: "workdir", args: []string{"-w", "/tmp", "pwd"}, wantOut: "/tmp\n"},
		{name: "stdin", stdin: "line1\nline2\n", args: []string{"-i", "sh", "-c", "cat; echo done"}, wantOut: "line1\nline2\ndone\n"},
		{name: "same namespaces", args: []string{"sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '"}, wantOut: id[:12] + "\nsleep 600 "},
		{name: "not found", args: []string{"nosuchcmd"}, wantErr: `exec: "nosuchcmd": executable file not found in $PATH`, wantCode: 127},
		{name: "unknown user", args: []string{"-u", "nobodyhere", "true"}, wantErr: "unable to find user nobodyhere", wantCode: 126},
		{name: "default caps", args: []string{"grep", "CapEff", "/proc/self/status"}, wantOut: "CapEff:\t00000000a80425fb\n"},
		{name: "seccomp", args: []string{"grep", "^Seccomp:", "/proc/self/status"}, wantOut: "Seccomp:\t2\n"},
		{name: "privileged caps", args: []string{"--privileged", "sh", "-c", "grep -c 'CapEff:.*a80425fb' /proc/self/status"}, wantOut: "0\n", wantCode: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"exec"}, insertID(tc.args, id)...)
			r := e.docker(t, tc.stdin, args...)
			if r.code != tc.wantCode {
				t.Fatalf("docker %v: %s, want exit %d", args, r, tc.wantCode)
			}
			if tc.wantOut != "" && r.stdout != tc.wantOut {
				t.Fatalf("stdout %q, want %q (%s)", r.stdout, tc.wantOut, r)
			}
			if tc.wantErr != "" && !strings.Contains(r.stdout+r.stderr, tc.wantErr) {
				t.Fatalf("output lacks %q: %s", tc.wantErr, r)
			}
		})
	}
	t.Run("detached", func(t *testing.T) {
		e.ok(t, "exec", "-d", id, "sh", "-c", "sleep 0.3; echo bg > /tmp/bg")
		waitFor(t, func() bool { return e.docker(t, "", "exec", id, "cat", "/tmp/bg").stdout == "bg\n" })
	})
	t.Run("not in logs", func(t *testing.T) {
		e.ok(t, "exec", id, "echo", "exec-output")
		if out := e.ok(t, "logs", id); strings.Contains(out, "exec-output") {
			t.Fatalf("exec output in the container log: %q", out)
		}
	})
	t.Run("berth CLI", func(t *testing.T) {
		r := e.berthCLI(t, "in\n", "exec", "-i", "-e", "X=y", id, "sh", "-c", "cat; echo $X; exit 3")
		if r.code != 3 || r.stdout != "in\ny\n" {
			t.Fatalf("berth exec: %s", r)
		}
	})
}

// insertID puts the container id before the command (after the exec flags).
func insertID(args []string, id string) []string {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		if args[i] == "-e" || args[i] == "-u" || args[i] == "-w" {
			i++
		}
		i++
	}
	out := append([]string{}, args[:i]...)
	out = append(out, id)
	return append(out, args[i:]...)
}

func TestExecStoppedAndPaused(t *testing.T) {
	e := need(t)
	stopped := strings.TrimSpace(e.ok(t, "run", "-d", "busybox", "true"))
	defer e.docker(t, "", "rm", "-f", stopped)
	e.ok(t, "wait", stopped)
	r := e.docker(t, "", "exec", stopped, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "container "+stopped+" is not running") {
		t.Fatalf("exec into a stopped container: %s", r)
	}
	id := runSleeper(t, e)
	e.ok(t, "pause", id)
	if st := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", id)); st != "paused true" {
		t.Fatalf("paused container state %q", st)
	}
	pid := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.Pid}}", id))
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Frozen tasks sleep uninterruptibly ('D') in the freezer.
	if f := strings.Fields(string(stat)); len(f) < 3 || f[2] != "D" {
		t.Fatalf("paused process state %q, want D", f[2])
	}
	if out := e.ok(t, "ps", "--filter", "id="+id, "--format", "{{.Status}}"); !strings.HasSuffix(strings.TrimSpace(out), "(Paused)") {
		t.Fatalf("ps status of a paused container: %q", out)
	}
	r = e.docker(t, "", "exec", id, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "is paused, unpause the container before exec") {
		t.Fatalf("exec into a paused container: %s", r)
	}
	if r := e.docker(t, "", "pause", id); r.code == 0 || !strings.Contains(r.stderr, "is already paused") {
		t.Fatalf("second pause: %s", r)
	}
	e.ok(t, "unpause", id)
	if r := e.docker(t, "", "unpause", id); r.code == 0 || !strings.Contains(r.stderr, "is not paused") {
		t.Fatalf("second unpause: %s", r)
	}
	if out := e.ok(t, "exec", id, "echo", "thawed"); out != "thawed\n" {
		t.Fatalf("exec after unpause: %q", out)
	}
	// A paused container still stops (SIGKILL thaws it).
	id2 := runSleeper(t, e)
	e.ok(t, "pause", id2)
	e.ok(t, "kill", id2)
	if st := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.Status}}", id2)); st != "exited" {
		waitFor(t, func() bool {
			return strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.Status}}", id2)) == "exited"
		})
	}
}

func TestTopAndStats(t *testing.T) {
	e := need(t)
	id := strings.TrimSpace(e.ok(t, "run", "-d", "busybox", "sh", "-c", "while :; do :; done"))
	defer e.docker(t, "", "rm", "-f", id)
	out := e.ok(t, "top", id)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "UID PID PPID C STIME TTY TIME CMD" ||
		!strings.Contains(lines[1], "sh -c while :; do :; done") {
		t.Fatalf("docker top: %q", out)
	}
	if out := e.ok(t, "top", id, "-o", "pid,comm"); !strings.Contains(out, "COMMAND") || !strings.Contains(out, "sh") {
		t.Fatalf("docker top -o pid,comm: %q", out)
	}
	out = e.ok(t, "stats", "--no-stream", "--format", "{{json .}}", id)
	var row map[string]string
	if err := json.Unmarshal([]byte(out), &row); err != nil {
		t.Fatalf("stats --no-stream: %q: %v", out, err)
	}
	cpu, err := strconv.ParseFloat(strings.TrimSuffix(row["CPUPerc"], "%"), 64)
	if err != nil || cpu < 20 {
		t.Fatalf("CPU %% of a busy loop: %q (%v)", row["CPUPerc"], err)
	}
	if row["PIDs"] != "1" || !strings.Contains(row["MemUsage"], " / ") || row["MemUsage"][0] == '0' {
		t.Fatalf("stats row: %v", row)
	}
	// The raw one-shot sample has the JSON fields docker reads.
	r := e.docker(t, "", "stats", "--no-stream", id)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "CONTAINER ID   NAME") {
		t.Fatalf("stats table: %s", r)
	}
	if r := e.berthCLI(t, "", "stats", "--no-stream", id); r.code != 0 || !strings.Contains(r.stdout, id[:12]) {
		t.Fatalf("berth stats: %s", r)
	}
}

func TestHealthCheck(t *testing.T) {
	e := need(t)
	id := runSleeper(t, e, "--health-cmd", "test -e /tmp/ok", "--health-interval", "200ms", "--health-retries", "2")
	health := func() (status string, streak int, logs int) {
		var h struct {
			Status        string
			FailingStreak int
			Log           []json.RawMessage
		}
		out := e.ok(t, "inspect", "-f", "{{json .State.Health}}", id)
		if err := json.Unmarshal([]byte(out), &h); err != nil {
			t.Fatalf("health %q: %v", out, err)
		}
		return h.Status, h.FailingStreak, len(h.Log)
	}
	waitFor(t, func() bool { s, _, _ := health(); return s == "unhealthy" })
	if _, streak, logs := health(); streak < 2 || logs > 5 {
		t.Fatalf("unhealthy: streak %d, %d log entries", streak, logs)
	}
	if out := e.ok(t, "ps", "--filter", "health=unhealthy", "-q", "--no-trunc"); strings.TrimSpace(out) != id {
		t.Fatalf("ps health=unhealthy: %q", out)
	}
	e.ok(t, "exec", id, "touch", "/tmp/ok")
	waitFor(t, func() bool { s, _, _ := health(); return s == "healthy" })
	if out := e.ok(t, "ps", "--filter", "id="+id, "--format", "{{.Status}}"); !strings.HasSuffix(strings.TrimSpace(out), "(healthy)") {
		t.Fatalf("ps status: %q", out)
	}
	// The event follows the state change; --until has a one-second grain.
	var ev string
	waitFor(t, func() bool {
		ev = e.ok(t, "events", "--since", "60s", "--until", "0s", "--filter", "container="+id, "--filter", "event=health_status")
		return strings.Contains(ev, "health_status: unhealthy") && strings.Contains(ev, "health_status: healthy")
	})
	// --no-healthcheck and a start period.
	id2 := runSleeper(t, e, "--no-healthcheck")
	if out := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{json .State.Health}}", id2)); out != "null" {
		t.Fatalf("--no-healthcheck health: %q", out)
	}
	id3 := runSleeper(t, e, "--health-cmd", "false", "--health-interval", "100ms", "--health-retries", "1", "--health-start-period", "30s")
	time.Sleep(700 * time.Millisecond)
	if out := e.ok(t, "ps", "--filter", "id="+id3, "--format", "{{.Status}}"); !strings.Contains(out, "(health: starting)") {
		t.Fatalf("failures in the start period must not count: %q", out)
	}
}

func TestExecAfterDaemonKill9(t *testing.T) {
	e := need(t)
	id := runSleeper(t, e)
	e.daemon.Process.Kill()
	e.daemon.Wait()
	e.daemon = nil
	if err := e.startDaemon(); err != nil {
		t.Fatal(err)
	}
	if out := e.ok(t, "exec", id, "echo", "still here"); out != "still here\n" {
		t.Fatalf("exec after kill -9 of the daemon: %q", out)
	}
	if out := e.ok(t, "top", id); !strings.Contains(out, "sleep 600") {
		t.Fatalf("top after restart: %q", out)
	}
}

// tmux drives an interactive docker command in a real terminal.
type tmux struct {
	t    *testing.T
	name string
}

func newTmux(t *testing.T, e *env, command string) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (apt-get install tmux): interactive tests skipped")
	}
	name := fmt.Sprintf("berth-e2e-%d", time.Now().UnixNano())
	sh := fmt.Sprintf("DOCKER_HOST=unix://%s DOCKER_CONFIG=%s/docker-config %s; echo EXIT=$?; sleep 60", e.sock, e.dir, command)
	if out, err := exec.Command("tmux", "new-session", "-d", "-s", name, "-x", "100", "-y", "30", sh).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	tm := &tmux{t: t, name: name}
	t.Cleanup(func() { exec.Command("tmux", "kill-session", "-t", name).Run() })
	return tm
}

func (tm *tmux) send(keys ...string) {
	tm.t.Helper()
	if out, err := exec.Command("tmux", append([]string{"send-keys", "-t", tm.name}, keys...)...).CombinedOutput(); err != nil {
		tm.t.Fatalf("tmux send-keys: %v %s", err, out)
	}
}

func (tm *tmux) screen() string {
	out, _ := exec.Command("tmux", "capture-pane", "-p", "-t", tm.name).Output()
	return string(out)
}

// waitScreen waits until the pane shows want.
func (tm *tmux) waitScreen(want string) {
	tm.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(tm.screen(), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tm.t.Fatalf("screen never showed %q:\n%s", want, tm.screen())
}

func (tm *tmux) resize(w, h int) {
	exec.Command("tmux", "resize-window", "-t", tm.name, "-x", strconv.Itoa(w), "-y", strconv.Itoa(h)).Run()
}

func TestInteractiveRunAttach(t *testing.T) {
	e := need(t)
	name := fmt.Sprintf("it-%d", time.Now().UnixNano())
	defer e.docker(t, "", "rm", "-f", name)
	tm := newTmux(t, e, dockerBin+" run -it --name "+name+" busybox sh")
	tm.waitScreen("/ #")
	tm.send("echo hi-$((1+1)); stty size", "Enter")
	tm.waitScreen("hi-2")
	tm.waitScreen("30 100")
	tm.resize(80, 20)
	time.Sleep(300 * time.Millisecond)
	tm.send("stty size", "Enter")
	tm.waitScreen("20 80")
	tm.send("C-p", "C-q")
	tm.waitScreen("EXIT=0")
	if st := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.Status}}", name)); st != "running" {
		t.Fatalf("after detach: %q", st)
	}
	tm2 := newTmux(t, e, dockerBin+" attach "+name)
	time.Sleep(500 * time.Millisecond)
	tm2.send("echo back-$((2+2))", "Enter")
	tm2.waitScreen("back-4")
	tm2.send("exit 3", "Enter")
	tm2.waitScreen("EXIT=3")
}

func TestInteractiveExec(t *testing.T) {
	e := need(t)
	id := runSleeper(t, e)
	for _, cli := range []string{dockerBin, e.berth + " -H unix://" + e.sock} {
		tm := newTmux(t, e, cli+" exec -it "+id+" sh")
		tm.waitScreen("/ #")
		tm.send("tty; stty size", "Enter")
		tm.waitScreen("/dev/pts/")
		tm.waitScreen("30 100")
		tm.resize(90, 25)
		time.Sleep(300 * time.Millisecond)
		tm.send("stty size; exit 4", "Enter")
		tm.waitScreen("25 90")
		tm.waitScreen("EXIT=4")
	}
	// ctrl-p ctrl-q leaves the exec'd shell running.
	tm := newTmux(t, e, dockerBin+" exec -it "+id+" sh")
	tm.waitScreen("/ #")
	tm.send("exec sleep 500", "Enter")
	time.Sleep(300 * time.Millisecond)
	tm.send("C-p", "C-q")
	// The docker CLI reports the detach of an exec as an error.
	tm.waitScreen("read escape sequence")
	tm.waitScreen("EXIT=1")
	if out := e.ok(t, "top", id); !strings.Contains(out, "sleep 500") {
		t.Fatalf("the detached exec is gone: %q", out)
	}
}
