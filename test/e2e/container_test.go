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

func TestVersionAndInfo(t *testing.T) {
	e := need(t)
	out := e.ok(t, "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}")
	if !strings.HasPrefix(out, "1.") || !strings.Contains(out, "linux") {
		t.Fatalf("docker version: %q", out)
	}
	out = e.ok(t, "info", "--format", "{{.OSType}} {{.Images}}")
	if !strings.HasPrefix(out, "linux ") {
		t.Fatalf("docker info: %q", out)
	}
}

func TestRunOutputAndExitCodes(t *testing.T) {
	e := need(t)
	cases := []struct {
		name   string
		args   []string
		stdout string
		code   int
		stderr string
	}{
		{"echo", []string{"run", "--rm", "busybox", "echo", "hello berth"}, "hello berth\n", 0, ""},
		{"exit code", []string{"run", "--rm", "busybox", "sh", "-c", "exit 3"}, "", 3, ""},
		{"stderr", []string{"run", "--rm", "busybox", "sh", "-c", "echo oops >&2; exit 1"}, "", 1, "oops"},
		{"env", []string{"run", "--rm", "-e", "FOO=bar", "busybox", "sh", "-c", "echo $FOO"}, "bar\n", 0, ""},
		{"workdir", []string{"run", "--rm", "-w", "/tmp", "busybox", "pwd"}, "/tmp\n", 0, ""},
		{"new workdir", []string{"run", "--rm", "-w", "/srv/app", "busybox", "pwd"}, "/srv/app\n", 0, ""},
		{"user", []string{"run", "--rm", "-u", "1000:1000", "busybox", "id", "-u"}, "1000\n", 0, ""},
		{"hostname", []string{"run", "--rm", "-h", "boxy", "busybox", "hostname"}, "boxy\n", 0, ""},
		{"entrypoint", []string{"run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"}, "a b\n", 0, ""},
		{"child killed", []string{"run", "--rm", "busybox", "sh", "-c", "sleep 5 & kill -9 $!; wait $!"}, "", 137, ""},
		{"not found", []string{"run", "--rm", "busybox", "nosuchcmd"}, "", 127, "executable file not found"},
		{"not executable", []string{"run", "--rm", "busybox", "/etc/passwd"}, "", 126, "permission denied"},
		{"no such image", []string{"run", "--rm", "127.0.0.1:9/nosuchimage:1"}, "", 125, "Unable to find image '127.0.0.1:9/nosuchimage:1' locally"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.docker(t, "", tc.args...)
			if r.code != tc.code {
				t.Fatalf("want exit %d, got %s", tc.code, r)
			}
			if tc.code == 0 && r.stdout != tc.stdout {
				t.Fatalf("want stdout %q, got %s", tc.stdout, r)
			}
			if tc.stderr != "" && !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("want stderr containing %q, got %s", tc.stderr, r)
			}
		})
	}
}

func TestRunStdin(t *testing.T) {
	e := need(t)
	r := e.docker(t, "line one\nline two\n", "run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done")
	if r.code != 0 || r.stdout != "line one\nline two\ndone\n" {
		t.Fatalf("run -i: %s", r)
	}
}

func TestRunSecurityDefaults(t *testing.T) {
	e := need(t)
	// Docker's default capability set, as captured from dockerd 20.10 here.
	out := e.ok(t, "run", "--rm", "busybox", "sh", "-c", "grep CapEff /proc/self/status")
	if !strings.Contains(out, "00000000a80425fb") {
		t.Fatalf("CapEff: %q, want Docker's default a80425fb", out)
	}
	// Seccomp filtering is on.
	out = e.ok(t, "run", "--rm", "busybox", "sh", "-c", "grep Seccomp: /proc/self/status")
	if !strings.Contains(out, "2") {
		t.Fatalf("seccomp mode: %q, want 2 (filter)", out)
	}
	// PID 1 is the user's process in its own pid namespace.
	out = e.ok(t, "run", "--rm", "busybox", "sh", "-c", "echo $$")
	if strings.TrimSpace(out) != "1" {
		t.Fatalf("pid in container: %q, want 1", out)
	}
	// /proc/kcore is masked, /proc/sys is read-only.
	r := e.docker(t, "", "run", "--rm", "busybox", "sh", "-c", "echo 1 > /proc/sys/kernel/domainname")
	if r.code == 0 {
		t.Fatalf("writing /proc/sys succeeded: %s", r)
	}
	out = e.ok(t, "run", "--rm", "busybox", "sh", "-c", "wc -c < /proc/timer_list")
	if strings.TrimSpace(out) != "0" {
		t.Fatalf("/proc/timer_list not masked: %q", out)
	}
	// Network mode none leaves only lo.
	out = e.ok(t, "run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net")
	if strings.TrimSpace(out) != "lo" {
		t.Fatalf("interfaces with --network none: %q", out)
	}
	r = e.docker(t, "", "run", "--rm", "--read-only", "busybox", "touch", "/x")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("--read-only: %s", r)
	}
}

func TestRunLimits(t *testing.T) {
	e := need(t)
	id := strings.TrimSpace(e.ok(t, "run", "-d", "-m", "64m", "--pids-limit", "50", "--cpus", "0.5", "busybox", "sleep", "30"))
	defer e.docker(t, "", "rm", "-f", id)
	var insp []struct {
		HostConfig struct {
			Memory    int64
			NanoCpus  int64
			PidsLimit int64
		}
		State struct{ Pid int }
	}
	if err := json.Unmarshal([]byte(e.ok(t, "inspect", id)), &insp); err != nil || len(insp) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	hc := insp[0].HostConfig
	if hc.Memory != 64<<20 || hc.NanoCpus != 5e8 || hc.PidsLimit != 50 {
		t.Fatalf("host config: %+v", hc)
	}
	// The kernel enforces them: read the container's cgroup files.
	pid := insp[0].State.Pid
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	mem := cgroupFile(string(cg), "memory", "memory.limit_in_bytes", "memory.max")
	if mem == "" {
		t.Fatalf("no memory cgroup for pid %d in %q", pid, cg)
	}
	if v := readTrim(mem); v != strconv.Itoa(64<<20) {
		t.Fatalf("%s = %q, want %d", mem, v, 64<<20)
	}
	pids := cgroupFile(string(cg), "pids", "pids.max", "pids.max")
	if v := readTrim(pids); v != "50" {
		t.Fatalf("%s = %q, want 50", pids, v)
	}
}

// cgroupFile finds a controller's file for a process: the v1 hierarchy
// when the controller is mounted there, else the unified one.
func cgroupFile(procCgroup, controller, v1file, v2file string) string {
	for _, line := range strings.Split(procCgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				p := "/sys/fs/cgroup/" + parts[1] + parts[2] + "/" + v1file
				if fileExists(p) {
					return p
				}
			}
		}
	}
	for _, line := range strings.Split(procCgroup, "\n") {
		if strings.HasPrefix(line, "0::") {
			for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
				p := root + strings.TrimPrefix(line, "0::") + "/" + v2file
				if fileExists(p) {
					return p
				}
			}
		}
	}
	return ""
}

func readTrim(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

func TestDetachedLifecycle(t *testing.T) {
	e := need(t)
	name := "life-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	id := strings.TrimSpace(e.ok(t, "run", "-d", "--name", name, "-l", "suite=e2e", "busybox", "sh", "-c", "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a 64-hex ID", id)
	}
	defer e.docker(t, "", "rm", "-f", id)

	out := e.ok(t, "ps", "--filter", "name="+name, "--format", "{{.Names}} {{.Status}} {{.Labels}}")
	if !strings.HasPrefix(out, name+" Up ") || !strings.Contains(out, "suite=e2e") {
		t.Fatalf("ps: %q", out)
	}
	waitFor(t, func() bool { return strings.Contains(e.ok(t, "logs", name), "started") })

	r := e.docker(t, "", "run", "-d", "--name", name, "busybox", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "Conflict") {
		t.Fatalf("duplicate name: %s", r)
	}
	r = e.docker(t, "", "rm", name)
	if r.code == 0 || !strings.Contains(r.stderr, "Stop the container before attempting removal") {
		t.Fatalf("rm of a running container: %s", r)
	}

	e.ok(t, "stop", "-t", "5", name)
	status := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name))
	if status != "exited 0" {
		t.Fatalf("after stop: %q, want \"exited 0\" (the TERM trap ran)", status)
	}
	if logs := e.ok(t, "logs", name); logs != "started\nbye\n" {
		t.Fatalf("logs: %q", logs)
	}
	out = e.ok(t, "ps", "-a", "--filter", "status=exited", "--filter", "label=suite=e2e", "--format", "{{.Names}}")
	if !strings.Contains(out, name) {
		t.Fatalf("ps -a --filter status=exited: %q", out)
	}
	// Start again: the same container runs a second time.
	e.ok(t, "start", name)
	waitFor(t, func() bool { return strings.Count(e.ok(t, "logs", name), "started") == 2 })
	e.ok(t, "kill", name)
	if code := strings.TrimSpace(e.ok(t, "wait", name)); code != "137" {
		t.Fatalf("wait after kill: %q, want 137", code)
	}
	e.ok(t, "rm", name)
	r = e.docker(t, "", "inspect", name)
	if r.code == 0 || !strings.Contains(r.stderr, "No such") {
		t.Fatalf("inspect after rm: %s", r)
	}
}

func TestLogsOptions(t *testing.T) {
	e := need(t)
	id := strings.TrimSpace(e.ok(t, "run", "-d", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; sleep 0.3; echo err >&2"))
	defer e.docker(t, "", "rm", "-f", id)
	e.ok(t, "wait", id)
	r := e.docker(t, "", "logs", "--tail", "2", id)
	if r.stdout != "line5\n" || r.stderr != "err\n" {
		t.Fatalf("logs --tail 2: %s", r)
	}
	out := e.ok(t, "logs", "-t", id)
	first := strings.SplitN(out, " ", 2)[0]
	if _, err := time.Parse(time.RFC3339Nano, first); err != nil {
		t.Fatalf("logs -t first field %q: %v", first, err)
	}
}

func TestLogsFollow(t *testing.T) {
	e := need(t)
	id := strings.TrimSpace(e.ok(t, "run", "-d", "busybox", "sh", "-c", "echo a; sleep 1; echo b"))
	defer e.docker(t, "", "rm", "-f", id)
	start := time.Now()
	out := e.ok(t, "logs", "-f", id)
	if out != "a\nb\n" {
		t.Fatalf("logs -f: %q", out)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatalf("logs -f did not end when the container exited")
	}
}

func TestRunTTY(t *testing.T) {
	e := need(t)
	// docker run -t without a terminal on our side still allocates a pty in
	// the container: the process sees a terminal.
	id := strings.TrimSpace(e.ok(t, "run", "-d", "-t", "busybox", "sh", "-c", "test -t 1 && echo tty"))
	defer e.docker(t, "", "rm", "-f", id)
	e.ok(t, "wait", id)
	if out := e.ok(t, "logs", id); strings.TrimSpace(out) != "tty" {
		t.Fatalf("logs of a tty container: %q", out)
	}
}

func TestAutoRemoveAndPrune(t *testing.T) {
	e := need(t)
	name := "auto-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	e.ok(t, "run", "--rm", "--name", name, "busybox", "true")
	waitFor(t, func() bool { return e.docker(t, "", "inspect", name).code != 0 })

	id := strings.TrimSpace(e.ok(t, "create", "-l", "prune=me", "busybox", "true"))
	keep := strings.TrimSpace(e.ok(t, "create", "busybox", "true"))
	defer e.docker(t, "", "rm", "-f", keep)
	out := e.ok(t, "container", "prune", "-f", "--filter", "label=prune=me")
	if !strings.Contains(out, id) {
		t.Fatalf("prune output %q lacks %s", out, id)
	}
	if e.docker(t, "", "inspect", id).code == 0 {
		t.Fatalf("pruned container still exists")
	}
	if e.docker(t, "", "inspect", keep).code != 0 {
		t.Fatalf("prune removed a container outside its filter")
	}
}

func TestEvents(t *testing.T) {
	e := need(t)
	since := time.Now().Add(-time.Second).Unix()
	name := "ev-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	e.ok(t, "run", "--rm", "--name", name, "busybox", "true")
	until := time.Now().Add(time.Second).Unix()
	time.Sleep(1100 * time.Millisecond)
	out := e.ok(t, "events", "--since", strconv.FormatInt(since, 10), "--until", strconv.FormatInt(until, 10),
		"--filter", "container="+name, "--format", "{{.Type}} {{.Action}}")
	for _, want := range []string{"container create", "container start", "container die", "container destroy"} {
		if !strings.Contains(out, want) {
			t.Fatalf("events lack %q:\n%s", want, out)
		}
	}
}

func TestContainersSurviveDaemonRestart(t *testing.T) {
	e := need(t)
	id := strings.TrimSpace(e.ok(t, "run", "-d", "busybox", "sh", "-c", "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done"))
	defer e.docker(t, "", "rm", "-f", id)
	pid := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.Pid}}", id))
	if err := e.stopDaemon(); err != nil {
		t.Fatalf("stop daemon: %v", err)
	}
	if !fileExists("/proc/" + pid) {
		t.Fatalf("container process %s died with the daemon", pid)
	}
	if err := e.startDaemon(); err != nil {
		t.Fatal(err)
	}
	out := e.ok(t, "inspect", "-f", "{{.State.Status}} {{.State.Pid}}", id)
	if strings.TrimSpace(out) != "running "+pid {
		t.Fatalf("after restart: %q, want running %s", out, pid)
	}
	// Logs kept flowing and stop still works through the reconnected shim.
	waitFor(t, func() bool { return strings.Contains(e.ok(t, "logs", "--tail", "1", id), "tick") })
	e.ok(t, "stop", "-t", "1", id)
	if st := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.Status}}", id)); st != "exited" {
		t.Fatalf("after stop: %q", st)
	}
}

func TestBadRequests(t *testing.T) {
	e := need(t)
	r := e.docker(t, "", "inspect", "--type", "container", "nosuchcontainer")
	if r.code == 0 || !strings.Contains(r.stderr, "No such container") {
		t.Fatalf("inspect missing: %s", r)
	}
	r = e.docker(t, "", "run", "--rm", "--name", "bad/name", "busybox", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "Invalid container name") {
		t.Fatalf("bad name: %s", r)
	}
	r = e.docker(t, "", "run", "--rm", "-u", "nosuchuser", "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "nosuchuser") {
		t.Fatalf("unknown user: %s", r)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("condition not met within 15s")
}

func TestDaemonKill9KeepsContainersAndStatus(t *testing.T) {
	e := need(t)
	running := strings.TrimSpace(e.ok(t, "run", "-d", "busybox", "sleep", "60"))
	defer e.docker(t, "", "rm", "-f", running)
	exiting := strings.TrimSpace(e.ok(t, "run", "-d", "busybox", "sh", "-c", "sleep 1; exit 42"))
	defer e.docker(t, "", "rm", "-f", exiting)
	// SIGKILL: no chance to clean up anything.
	e.daemon.Process.Kill()
	e.daemon.Wait()
	e.daemon = nil
	time.Sleep(2 * time.Second) // the second container exits while no daemon runs
	if err := e.startDaemon(); err != nil {
		t.Fatal(err)
	}
	if st := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.Status}}", running)); st != "running" {
		t.Fatalf("container after daemon kill -9: %q, want running", st)
	}
	if st := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", exiting)); st != "exited 42" {
		t.Fatalf("container that exited while the daemon was down: %q, want \"exited 42\"", st)
	}
	out := e.ok(t, "ps", "-q", "--no-trunc")
	if !strings.Contains(out, running) || strings.Contains(out, exiting) {
		t.Fatalf("ps after restart: %q", out)
	}
	e.ok(t, "rm", "-f", running)
}

func TestClientDisconnectLeavesContainerRunning(t *testing.T) {
	e := need(t)
	name := "detach-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cmd := exec.Command(dockerBin, "run", "--name", name, "busybox", "sh", "-c", "while true; do echo x; sleep 0.1; done")
	cmd.Env = e.dockerEnv()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer e.docker(t, "", "rm", "-f", name)
	waitFor(t, func() bool {
		return strings.TrimSpace(e.docker(t, "", "inspect", "-f", "{{.State.Status}}", name).stdout) == "running"
	})
	cmd.Process.Kill() // the attached client vanishes
	cmd.Wait()
	time.Sleep(500 * time.Millisecond)
	if st := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.Status}}", name)); st != "running" {
		t.Fatalf("container after its client died: %q", st)
	}
	before := strings.Count(e.ok(t, "logs", name), "x")
	time.Sleep(500 * time.Millisecond)
	if after := strings.Count(e.ok(t, "logs", name), "x"); after <= before {
		t.Fatalf("container stopped producing output after its client died (%d -> %d lines)", before, after)
	}
}

// TestSecondDaemonWithRunc runs a second daemon beside the suite's, with
// its own roots and socket, using Debian's runc for the same bundles.
func TestSecondDaemonWithRunc(t *testing.T) {
	e := need(t)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed (apt-get install runc)")
	}
	dir := t.TempDir()
	second := &env{berth: e.berth, dir: dir, sock: dir + "/b.sock", logPath: dir + "/daemon.log"}
	cmd := exec.Command(e.berth, "daemon", "-H", "unix://"+second.sock, "--data-root", dir+"/data",
		"--exec-root", dir+"/exec", "--cgroup-parent", "/berth-e2e-runc", "--runtime", "runc")
	logf, _ := os.Create(second.logPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	second.daemon = cmd
	defer func() {
		second.docker(t, "", "rm", "-f", "runc-box")
		second.stopDaemon()
		logf.Close()
	}()
	waitFor(t, func() bool { return second.docker(t, "", "version").code == 0 })
	tarball := mustTar(t)
	if r := second.docker(t, string(tarball), "import", "-", "busybox"); r.code != 0 {
		t.Fatalf("import into the second daemon: %s", r)
	}
	r := second.docker(t, "", "run", "--rm", "busybox", "sh", "-c", "grep CapEff /proc/self/status; echo $$")
	if r.code != 0 || !strings.Contains(r.stdout, "a80425fb") || !strings.HasSuffix(r.stdout, "\n1\n") {
		t.Fatalf("run under runc: %s", r)
	}
	// The first daemon does not see the second's containers or images.
	second.ok(t, "run", "-d", "--name", "runc-box", "busybox", "sleep", "30")
	if out := e.ok(t, "ps", "-a", "--format", "{{.Names}}"); strings.Contains(out, "runc-box") {
		t.Fatalf("the suite's daemon lists the second daemon's container: %q", out)
	}
}
