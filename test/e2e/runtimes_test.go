package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestPerContainerRuntime runs the same probe under the built-in runtime
// and under runc (--runtime runc): what the container sees must not depend
// on which one runs its bundle.
func TestPerContainerRuntime(t *testing.T) {
	e := need(t)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed")
	}
	args := []string{"run", "--rm", "--network", "none", "busybox", "sh", "-c", securityProbe}
	builtin := e.docker(t, "", args...)
	runc := e.docker(t, "", append([]string{"run", "--rm", "--runtime", "runc"}, args[2:]...)...)
	if builtin.code != 0 || runc.code != 0 {
		t.Fatalf("builtin: %s\nrunc: %s", builtin, runc)
	}
	if b, r := normalizeProbe(builtin.stdout), normalizeProbe(runc.stdout); b != r {
		t.Errorf("built-in and runc differ:\n%s", lineDiff(r, b))
	}
	if out := e.ok(t, "run", "-d", "--runtime", "runc", "--name", "rt-runc", "busybox", "sleep", "100"); out == "" {
		t.Fatal("no id")
	}
	defer e.docker(t, "", "rm", "-f", "rt-runc")
	if out := e.ok(t, "inspect", "-f", "{{.HostConfig.Runtime}} {{.State.Running}}", "rt-runc"); out != "runc true\n" {
		t.Fatalf("inspect: %q", out)
	}
	e.ok(t, "stop", "-t", "1", "rt-runc")
	if r := e.docker(t, "", "run", "--rm", "--runtime", "nosuch", "busybox", "true"); r.code != 125 || !strings.Contains(r.stderr, "Unknown runtime specified nosuch") {
		t.Fatalf("unknown runtime: %s", r)
	}
}

// TestAddRuntimeCrun registers crun with --add-runtime on a second daemon.
func TestAddRuntimeCrun(t *testing.T) {
	e := need(t)
	crun, err := exec.LookPath("crun")
	if err != nil {
		t.Skip("crun is not installed (apt-get install crun)")
	}
	d := startExtraBerth(t, e, "--add-runtime", "crun="+crun)
	r := d.run(t, "", "run", "--rm", "--network", "none", "--runtime", "crun", "busybox", "sh", "-c", "echo crun-ok")
	if r.code != 0 && strings.Contains(r.stderr, "hybrid mode not supported") {
		t.Skipf("crun refuses this host's hybrid cgroup layout: %s", strings.TrimSpace(r.stderr))
	}
	if r.code != 0 || r.stdout != "crun-ok\n" {
		t.Fatalf("crun: %s", r)
	}
}

// startExtraBerth runs another berth daemon with extra flags, on its own
// roots, with busybox imported; it is stopped at the end of the test.
func startExtraBerth(t *testing.T, e *env, args ...string) *dockerd {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-x-")
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerd{sock: dir + "/berth.sock", dir: dir}
	logf, _ := os.Create(dir + "/daemon.log")
	d.cmd = exec.Command(e.berth, append([]string{"daemon", "-H", "unix://" + d.sock, "--data-root", dir + "/data",
		"--exec-root", dir + "/exec", "--cgroup-parent", "/berth-x-" + strings.TrimPrefix(dir, "/tmp/berth-x-")}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stop(); logf.Close() })
	for i := 0; i < 200; i++ {
		if d.run(t, "", "version").code == 0 {
			break
		}
	}
	tarball, err := busyboxTar()
	if err != nil {
		t.Fatal(err)
	}
	if r := d.run(t, string(tarball), "import", "-", "busybox:latest"); r.code != 0 {
		t.Fatalf("import: %s", r)
	}
	return d
}
