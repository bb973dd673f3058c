package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitFor polls docker inspect's format until it prints want.
func (e *env) waitFor(t *testing.T, name, format, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var got string
	for time.Now().Before(deadline) {
		got = strings.TrimSpace(e.docker(t, "", "inspect", "-f", format, name).stdout)
		if got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %s = %q, want %q", name, format, got, want)
}

func TestRestartPolicies(t *testing.T) {
	e := need(t)
	t.Run("on-failure max", func(t *testing.T) {
		e.ok(t, "run", "-d", "--name", "rp-fail", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3")
		defer e.docker(t, "", "rm", "-f", "rp-fail")
		// 100 ms then 200 ms back-off: two restarts, then it stays down.
		e.waitFor(t, "rp-fail", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", "2 exited 3", 5*time.Second)
		time.Sleep(600 * time.Millisecond)
		e.waitFor(t, "rp-fail", "{{.RestartCount}} {{.State.Status}}", "2 exited", time.Second)
	})
	t.Run("on-failure success stays down", func(t *testing.T) {
		e.ok(t, "run", "-d", "--name", "rp-ok", "--restart", "on-failure", "busybox", "true")
		defer e.docker(t, "", "rm", "-f", "rp-ok")
		e.waitFor(t, "rp-ok", "{{.State.Status}}", "exited", 5*time.Second)
		time.Sleep(300 * time.Millisecond)
		e.waitFor(t, "rp-ok", "{{.RestartCount}} {{.State.Status}}", "0 exited", time.Second)
	})
	t.Run("always and stop", func(t *testing.T) {
		e.ok(t, "run", "-d", "--name", "rp-always", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2")
		defer e.docker(t, "", "rm", "-f", "rp-always")
		deadline := time.Now().Add(10 * time.Second)
		for {
			out := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.RestartCount}}", "rp-always"))
			if n, _ := strconv.Atoi(out); n >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("always: only %s restarts", out)
			}
			time.Sleep(50 * time.Millisecond)
		}
		e.ok(t, "stop", "-t", "1", "rp-always")
		time.Sleep(700 * time.Millisecond)
		e.waitFor(t, "rp-always", "{{.State.Status}}", "exited", time.Second)
		// A start resets the count.
		e.ok(t, "start", "rp-always")
		if out := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.RestartCount}}", "rp-always")); out != "0" {
			t.Fatalf("RestartCount after start: %s", out)
		}
	})
	t.Run("restarting shows in ps", func(t *testing.T) {
		e.ok(t, "run", "-d", "--name", "rp-loop", "--restart", "always", "busybox", "false")
		defer e.docker(t, "", "rm", "-f", "rp-loop")
		deadline := time.Now().Add(10 * time.Second)
		for {
			out := e.ok(t, "ps", "-a", "--filter", "name=rp-loop", "--format", "{{.Status}}")
			if strings.HasPrefix(out, "Restarting (1)") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("never saw Restarting in ps: %q", out)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// stop ends the restart loop.
		e.ok(t, "stop", "rp-loop")
		e.waitFor(t, "rp-loop", "{{.State.Status}}", "exited", time.Second)
	})
	t.Run("rm with restart is refused", func(t *testing.T) {
		r := e.docker(t, "", "run", "--rm", "--restart", "always", "busybox", "true")
		if r.code != 125 || !strings.Contains(r.stderr, "--restart") {
			t.Fatalf("want conflict, got %s", r)
		}
	})
}

func TestRestartPolicyAfterDaemonRestart(t *testing.T) {
	e := need(t)
	e.ok(t, "run", "-d", "--name", "rp-d-always", "--restart", "always", "busybox", "sleep", "1000")
	e.ok(t, "run", "-d", "--name", "rp-d-unless", "--restart", "unless-stopped", "busybox", "sleep", "1000")
	e.ok(t, "run", "-d", "--name", "rp-d-no", "busybox", "sleep", "1000")
	defer e.docker(t, "", "rm", "-f", "rp-d-always", "rp-d-unless", "rp-d-no")
	e.ok(t, "stop", "-t", "0", "rp-d-unless")
	var pids []int
	for _, n := range []string{"rp-d-always", "rp-d-no"} {
		p, _ := strconv.Atoi(strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.Pid}}", n)))
		pids = append(pids, p)
	}
	if err := e.stopDaemon(); err != nil {
		t.Fatal(err)
	}
	// The containers die while no daemon watches (as in a host reboot).
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGKILL)
	}
	time.Sleep(300 * time.Millisecond)
	if err := e.startDaemon(); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "rp-d-always", "{{.State.Status}}", "running", 5*time.Second)
	e.waitFor(t, "rp-d-no", "{{.State.Status}}", "exited", time.Second)
	e.waitFor(t, "rp-d-unless", "{{.State.Status}}", "exited", time.Second)
}

func TestRenameUpdateCommit(t *testing.T) {
	e := need(t)
	e.ok(t, "run", "-d", "--name", "sec-ops", "busybox", "sh", "-c", "echo made > /made; sleep 1000")
	defer e.docker(t, "", "rm", "-f", "sec-ops2", "sec-ops")
	e.ok(t, "rename", "sec-ops", "sec-ops2")
	if out := e.ok(t, "ps", "--filter", "name=sec-ops2", "--format", "{{.Names}}"); out != "sec-ops2\n" {
		t.Fatalf("ps after rename: %q", out)
	}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"rename", "sec-ops2", "sec-ops2"}, "Renaming a container with the same name as its current name"},
		{[]string{"rename", "sec-ops2", "bad/name"}, "Invalid container name (bad/name)"},
		{[]string{"rename", "nosuch", "xx"}, "No such container: nosuch"},
	} {
		if r := e.docker(t, "", tc.args...); r.code == 0 || !strings.Contains(r.stderr, tc.err) {
			t.Errorf("%v: want %q, got %s", tc.args, tc.err, r)
		}
	}

	e.ok(t, "update", "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5", "--pids-limit", "40", "--restart", "on-failure:3", "sec-ops2")
	out := e.ok(t, "inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCPUs}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "sec-ops2")
	if out != "67108864 500000000 40 on-failure:3\n" {
		t.Fatalf("inspect after update: %q", out)
	}
	pid := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.Pid}}", "sec-ops2"))
	checkCgroup(t, pid, "memory", []string{"memory.limit_in_bytes", "memory.max"}, "67108864")
	checkCgroup(t, pid, "pids", []string{"pids.max"}, "40")
	checkCgroup(t, pid, "cpu", []string{"cpu.cfs_quota_us", "cpu.max"}, "50000")
	if r := e.docker(t, "", "update", "--memory", "1m", "sec-ops2"); r.code == 0 || !strings.Contains(r.stderr, "Minimum memory limit allowed is 6MB") {
		t.Errorf("tiny memory: %s", r)
	}

	id := strings.TrimSpace(e.ok(t, "commit", "-c", "ENV COMMITTED=yes", "-m", "a message", "sec-ops2", "sec-committed:v1"))
	defer e.docker(t, "", "rmi", "sec-committed:v1")
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("commit printed %q", id)
	}
	if out := e.ok(t, "run", "--rm", "sec-committed:v1", "sh", "-c", "cat /made; echo $COMMITTED"); out != "made\nyes\n" {
		t.Fatalf("committed image: %q", out)
	}
}

func TestCopy(t *testing.T) {
	e := need(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f.txt"), []byte("hello cp\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "tree/sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "tree/sub/g"), []byte("g\n"), 0o600)
	for _, running := range []bool{true, false} {
		name := "sec-cp-stopped"
		args := []string{"create", "--name", name, "busybox", "sleep", "1000"}
		if running {
			name = "sec-cp-running"
			args = []string{"run", "-d", "--name", name, "busybox", "sleep", "1000"}
		}
		e.ok(t, args...)
		defer e.docker(t, "", "rm", "-f", name)
		e.ok(t, "cp", filepath.Join(dir, "f.txt"), name+":/")
		e.ok(t, "cp", filepath.Join(dir, "f.txt"), name+":/renamed.txt")
		e.ok(t, "cp", filepath.Join(dir, "tree"), name+":/bin/")
		out := filepath.Join(dir, "out-"+name)
		os.MkdirAll(out, 0o755)
		e.ok(t, "cp", name+":/renamed.txt", filepath.Join(out, "back.txt"))
		e.ok(t, "cp", name+":/bin/tree", out)
		if running {
			e.ok(t, "cp", name+":/etc/hostname", out)
		} else {
			os.WriteFile(filepath.Join(out, "hostname"), []byte("0123456789ab\n"), 0o644)
		}
		if b, _ := os.ReadFile(filepath.Join(out, "back.txt")); string(b) != "hello cp\n" {
			t.Errorf("%s: round trip gave %q", name, b)
		}
		if b, _ := os.ReadFile(filepath.Join(out, "tree/sub/g")); string(b) != "g\n" {
			t.Errorf("%s: tree round trip gave %q", name, b)
		}
		if b, _ := os.ReadFile(filepath.Join(out, "hostname")); len(b) != 13 {
			t.Errorf("%s: /etc/hostname is the container's (12 hex + newline), got %q", name, b)
		}
		if r := e.docker(t, "", "cp", name+":/nonexist", out); r.code == 0 || !strings.Contains(r.stderr, "Could not find the file /nonexist in container "+name) {
			t.Errorf("missing file: %s", r)
		}
	}
	// A symlink in the container cannot send a copy to the host.
	e.ok(t, "run", "--name", "sec-cp-evil", "busybox", "sh", "-c", "ln -s / /escape && ln -s /etc/passwd-not-here /lnk")
	defer e.docker(t, "", "rm", "-f", "sec-cp-evil")
	e.ok(t, "cp", filepath.Join(dir, "f.txt"), "sec-cp-evil:/escape/tmp-escape-check")
	if _, err := os.Stat("/tmp-escape-check"); err == nil {
		os.Remove("/tmp-escape-check")
		t.Fatal("docker cp followed a container symlink onto the host")
	}
}

func TestKillSignals(t *testing.T) {
	e := need(t)
	e.ok(t, "run", "-d", "--name", "sec-kill", "busybox", "sh", "-c", "trap 'exit 42' USR1; while true; do sleep 0.1; done")
	defer e.docker(t, "", "rm", "-f", "sec-kill")
	for _, bad := range []string{"FOO", "0", "SIGNOPE"} {
		r := e.docker(t, "", "kill", "-s", bad, "sec-kill")
		if r.code == 0 || !strings.Contains(r.stderr, "Invalid signal: "+bad) {
			t.Errorf("kill -s %s: %s", bad, r)
		}
	}
	e.ok(t, "kill", "-s", "usr1", "sec-kill")
	e.waitFor(t, "sec-kill", "{{.State.Status}} {{.State.ExitCode}}", "exited 42", 5*time.Second)
	if r := e.docker(t, "", "kill", "sec-kill"); r.code == 0 || !strings.Contains(r.stderr, "is not running") {
		t.Errorf("kill stopped: %s", r)
	}
}

// checkCgroup reads the first existing file of the process's cgroup for
// controller (v1) or its unified cgroup (v2).
func checkCgroup(t *testing.T, pid, controller string, files []string, want string) {
	t.Helper()
	data, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var base string
		switch {
		case parts[1] == "" && parts[0] == "0":
			base = "/sys/fs/cgroup/unified"
			if _, err := os.Stat(base); err != nil {
				base = "/sys/fs/cgroup"
			}
		case strings.Contains(","+parts[1]+",", ","+controller+","):
			base = "/sys/fs/cgroup/" + controller
		default:
			continue
		}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(base, parts[2], f))
			if err != nil {
				continue
			}
			got := strings.Fields(string(b))[0]
			if got != want {
				t.Errorf("%s: %s = %q, want %q", controller, f, got, want)
			}
			return
		}
	}
	t.Errorf("no %s cgroup file %v found for pid %s", controller, files, pid)
}
