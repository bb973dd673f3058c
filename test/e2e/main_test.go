// Package e2e drives the official docker CLI (and berth's own) against a
// real berth daemon started for the test run, as a user would.
//
// The suite needs root (real namespaces, mounts and cgroups), the docker
// CLI at /usr/local/bin/docker (or on PATH) and busybox from Debian's
// busybox-static package; it skips with a message when any is missing.
package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// env is the daemon the whole run shares.
type env struct {
	berth   string // path of the berth binary under test
	dir     string // temp dir holding data root, exec root and the socket
	sock    string
	daemon  *exec.Cmd
	logPath string
}

var (
	suite     *env
	skipWhy   string
	dockerBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	switch {
	case os.Geteuid() != 0:
		skipWhy = "end-to-end tests need root (namespaces, mounts, cgroups)"
	case lookDocker() == "":
		skipWhy = "the docker CLI is not installed"
	case !fileExists("/bin/busybox"):
		skipWhy = "busybox is not installed (apt-get install busybox-static)"
	}
	if skipWhy != "" || testing.Short() {
		return m.Run()
	}
	e, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		if e != nil {
			e.dumpLog()
			e.teardown()
		}
		return 1
	}
	suite = e
	code := m.Run()
	if code != 0 {
		e.dumpLog()
	}
	e.teardown()
	return code
}

func lookDocker() string {
	for _, p := range []string{"/usr/local/bin/docker"} {
		if fileExists(p) {
			dockerBin = p
			return p
		}
	}
	if p, err := exec.LookPath("docker"); err == nil {
		dockerBin = p
	}
	return dockerBin
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// repoRoot finds the module root from the test's working directory.
func repoRoot() (string, error) {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if fileExists(filepath.Join(d, "go.mod")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("go.mod not found above %s", dir)
}

func setup() (*env, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "berth-e2e-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir, sock: filepath.Join(dir, "berth.sock"), logPath: filepath.Join(dir, "daemon.log")}
	e.berth = os.Getenv("BERTH_BIN")
	if e.berth == "" {
		e.berth = filepath.Join(dir, "berth")
		build := exec.Command("go", "build", "-trimpath", "-o", e.berth, "./cmd/berth")
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return e, fmt.Errorf("build berth: %v\n%s", err, out)
		}
	}
	if err := e.startDaemon(); err != nil {
		return e, err
	}
	tarball, err := busyboxTar()
	if err != nil {
		return e, err
	}
	cmd := exec.Command(dockerBin, "import", "-", "busybox:latest")
	cmd.Env = e.dockerEnv()
	cmd.Stdin = bytes.NewReader(tarball)
	if out, err := cmd.CombinedOutput(); err != nil {
		return e, fmt.Errorf("docker import busybox: %v\n%s", err, out)
	}
	return e, nil
}

func (e *env) dockerEnv() []string {
	return append(os.Environ(), "DOCKER_HOST=unix://"+e.sock, "DOCKER_CONFIG="+filepath.Join(e.dir, "docker-config"))
}

// startDaemon starts berth daemon on the suite's roots and waits for its
// socket to answer.
func (e *env) startDaemon() error {
	logf, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(e.berth, "daemon",
		"-H", "unix://"+e.sock,
		"--data-root", filepath.Join(e.dir, "data"),
		"--exec-root", filepath.Join(e.dir, "exec"),
		"--cgroup-parent", "/berth-e2e-"+filepath.Base(e.dir),
		// A bridge, subnet and nftables table of the suite's own, so that
		// suites running side by side do not share them.
		"--bridge", e2eBridge(), "--bip", e2eBIP(),
		"--log-level", "debug")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	e.daemon = cmd
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", e.sock); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("daemon did not listen on %s within 20s", e.sock)
}

// stopDaemon stops the daemon with SIGTERM (containers keep running).
func (e *env) stopDaemon() error {
	if e.daemon == nil {
		return nil
	}
	e.daemon.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- e.daemon.Wait() }()
	select {
	case err := <-done:
		e.daemon = nil
		return err
	case <-time.After(15 * time.Second):
		e.daemon.Process.Kill()
		<-done
		e.daemon = nil
		return fmt.Errorf("daemon did not stop within 15s of SIGTERM")
	}
}

func (e *env) teardown() {
	// Remove every container first so shims, mounts and cgroups go too.
	if e.daemon != nil {
		cmd := exec.Command(dockerBin, "ps", "-aq")
		cmd.Env = e.dockerEnv()
		if out, err := cmd.Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
			rm := exec.Command(dockerBin, append([]string{"rm", "-f"}, strings.Fields(string(out))...)...)
			rm.Env = e.dockerEnv()
			rm.Run()
		}
	}
	e.stopDaemon()
	exec.Command("ip", "link", "del", e2eBridge()).Run() // the daemon leaves its bridge, as dockerd does
	// Unmount whatever is left below the temp dir before removing it.
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		var mnts []string
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && strings.HasPrefix(f[4], e.dir) {
				mnts = append(mnts, f[4])
			}
		}
		for i := len(mnts) - 1; i >= 0; i-- {
			syscall.Unmount(mnts[i], syscall.MNT_DETACH)
		}
	}
	os.RemoveAll(e.dir)
	// The daemon leaves its (empty) parent cgroup, as dockerd does; the
	// suite's is unique per run, so remove it.
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/berth-e2e-" + filepath.Base(e.dir))
	unified, _ := filepath.Glob("/sys/fs/cgroup/berth-e2e-" + filepath.Base(e.dir))
	for _, p := range append(parents, unified...) {
		os.Remove(p)
	}
}

func (e *env) dumpLog() {
	data, _ := os.ReadFile(e.logPath)
	if len(data) > 20000 {
		data = data[len(data)-20000:]
	}
	fmt.Fprintf(os.Stderr, "---- berth daemon log (tail) ----\n%s\n----\n", data)
}

// busyboxTar makes a rootfs tarball of Debian's static busybox with its
// applet links, the test image of the suite.
func busyboxTar() ([]byte, error) {
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	bin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	for _, d := range []string{"bin/", "etc/", "tmp/", "root/", "home/", "var/", "proc/", "sys/", "dev/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode, ModTime: now})
	}
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin)), ModTime: now})
	tw.Write(bin)
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", ModTime: now})
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\nuser:x:1000:\nextra:x:2000:user\n",
	}
	for name, content := range files {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: now})
		io.WriteString(tw, content)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// result is one CLI invocation's outcome.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %q\nstderr: %q", r.code, r.stdout, r.stderr)
}

// need skips the test when the suite could not run.
func need(t *testing.T) *env {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	if testing.Short() {
		t.Skip("end-to-end tests do not run with -short")
	}
	return suite
}

// docker runs the docker CLI against the suite's daemon.
func (e *env) docker(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return e.cli(t, dockerBin, stdin, args...)
}

// berthCLI runs berth's own client against the suite's daemon.
func (e *env) berthCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return e.cli(t, e.berth, stdin, append([]string{"-H", "unix://" + e.sock}, args...)...)
}

func (e *env) cli(t *testing.T, bin, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = e.dockerEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else {
			t.Fatalf("%s %v: %v", filepath.Base(bin), args, err)
		}
	}
	return r
}

// ok runs docker and fails the test unless it exits 0.
func (e *env) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := e.docker(t, "", args...)
	if r.code != 0 {
		t.Fatalf("docker %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}
