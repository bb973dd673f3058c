package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startRegistry runs `berth registry serve` on a free loopback port and
// returns its host:port.
func startRegistry(t *testing.T, e *env) string {
	t.Helper()
	cmd := exec.Command(e.berth, "registry", "serve", "--addr", "127.0.0.1:0", "--root", t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("registry did not report its address")
	}
	return ""
}

func TestDistPushRmiPull(t *testing.T) {
	e := need(t)
	reg := startRegistry(t, e)
	ref := reg + "/e2e/bb:1"
	e.ok(t, "tag", "busybox", ref)
	out := e.ok(t, "push", ref)
	m := regexp.MustCompile(`1: digest: (sha256:[0-9a-f]{64}) size: \d+`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("push output has no digest line:\n%s", out)
	}
	id := strings.TrimSpace(e.ok(t, "image", "inspect", "-f", "{{.Id}}", ref))
	e.ok(t, "rmi", ref)
	pull := e.ok(t, "pull", ref)
	for _, want := range []string{"1: Pulling from e2e/bb", "Pull complete", "Digest: " + m[1], "Status: Downloaded newer image for " + ref} {
		if !strings.Contains(pull, want) {
			t.Errorf("pull output lacks %q:\n%s", want, pull)
		}
	}
	if got := strings.TrimSpace(e.ok(t, "image", "inspect", "-f", "{{.Id}}", ref)); got != id {
		t.Fatalf("pulled image ID %s, pushed %s", got, id)
	}
	digests := e.ok(t, "image", "inspect", "-f", "{{json .RepoDigests}}", ref)
	if !strings.Contains(digests, reg+"/e2e/bb@"+m[1]) {
		t.Fatalf("RepoDigests %s lack the pushed digest %s", digests, m[1])
	}
	if out := e.ok(t, "run", "--rm", ref, "echo", "pulled"); strings.TrimSpace(out) != "pulled" {
		t.Fatalf("run of the pulled image: %q", out)
	}
	// A second pull is a no-op.
	if out := e.ok(t, "pull", ref); !strings.Contains(out, "Status: Image is up to date for "+ref) {
		t.Fatalf("second pull:\n%s", out)
	}
	// A missing tag is a plain error, as with dockerd.
	r := e.docker(t, "", "pull", reg+"/e2e/bb:nope")
	if r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("pull of a missing tag: %s", r)
	}
	e.ok(t, "rmi", ref)
}

func TestDistSaveLoad(t *testing.T) {
	e := need(t)
	ref := "e2e-save:1"
	e.ok(t, "tag", "busybox", ref)
	id := strings.TrimSpace(e.ok(t, "image", "inspect", "-f", "{{.Id}}", ref))
	file := filepath.Join(t.TempDir(), "img.tar")
	e.ok(t, "save", "-o", file, ref)
	e.ok(t, "rmi", ref)
	out := e.ok(t, "load", "-i", file)
	if strings.TrimSpace(out) != "Loaded image: "+ref {
		t.Fatalf("load output %q", out)
	}
	if got := strings.TrimSpace(e.ok(t, "image", "inspect", "-f", "{{.Id}}", ref)); got != id {
		t.Fatalf("loaded image ID %s, saved %s", got, id)
	}
	if out := e.ok(t, "run", "--rm", ref, "echo", "loaded"); strings.TrimSpace(out) != "loaded" {
		t.Fatalf("run of the loaded image: %q", out)
	}
	e.ok(t, "rmi", ref)
}

// TestDistArchivesWithDockerd loads a dockerd `docker save` into berth and
// a berth save into dockerd; both run.
func TestDistArchivesWithDockerd(t *testing.T) {
	e := need(t)
	d := startDockerd(t)
	dir := t.TempDir()
	fromDocker := filepath.Join(dir, "from-dockerd.tar")
	if r := d.run(t, "", "tag", "busybox:latest", "e2e-dk:1"); r.code != 0 {
		t.Fatalf("dockerd tag: %s", r)
	}
	if r := d.run(t, "", "save", "-o", fromDocker, "e2e-dk:1"); r.code != 0 {
		t.Fatalf("dockerd save: %s", r)
	}
	dkID := strings.TrimSpace(d.run(t, "", "image", "inspect", "-f", "{{.Id}}", "e2e-dk:1").stdout)
	if out := e.ok(t, "load", "-i", fromDocker); !strings.Contains(out, "Loaded image: e2e-dk:1") {
		t.Fatalf("berth load of a dockerd save: %q", out)
	}
	if id := strings.TrimSpace(e.ok(t, "image", "inspect", "-f", "{{.Id}}", "e2e-dk:1")); id != dkID {
		t.Fatalf("berth loaded %s, dockerd saved %s", id, dkID)
	}
	if out := e.ok(t, "run", "--rm", "e2e-dk:1", "echo", "from dockerd"); strings.TrimSpace(out) != "from dockerd" {
		t.Fatalf("run: %q", out)
	}
	e.ok(t, "rmi", "e2e-dk:1")

	e.ok(t, "tag", "busybox", "e2e-bt:1")
	fromBerth := filepath.Join(dir, "from-berth.tar")
	e.ok(t, "save", "-o", fromBerth, "e2e-bt:1")
	btID := strings.TrimSpace(e.ok(t, "image", "inspect", "-f", "{{.Id}}", "e2e-bt:1"))
	e.ok(t, "rmi", "e2e-bt:1")
	if r := d.run(t, "", "load", "-i", fromBerth); r.code != 0 || !strings.Contains(r.stdout, "Loaded image: e2e-bt:1") {
		t.Fatalf("dockerd load of a berth save: %s", r)
	}
	if id := strings.TrimSpace(d.run(t, "", "image", "inspect", "-f", "{{.Id}}", "e2e-bt:1").stdout); id != btID {
		t.Fatalf("dockerd loaded %s, berth saved %s", id, btID)
	}
	r := d.run(t, "", "run", "--rm", "--network", "none", "e2e-bt:1", "echo", "from berth")
	if r.code != 0 {
		if strings.Contains(r.stderr, "runc") || strings.Contains(r.stderr, "OCI runtime") {
			t.Skipf("dockerd cannot run containers here: %s", r)
		}
		t.Fatalf("dockerd run of a berth save: %s", r)
	}
	if strings.TrimSpace(r.stdout) != "from berth" {
		t.Fatalf("dockerd run: %q", r.stdout)
	}
}

var _ = os.Getenv
