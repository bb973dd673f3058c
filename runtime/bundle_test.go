package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The test binary is also the container init: Start re-executes
// /proc/self/exe with argv[1] == "__init", as the berth binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == initArg {
		InitMain()
		return
	}
	code := m.Run()
	if sharedRootfs != "" {
		os.RemoveAll(filepath.Dir(sharedRootfs))
	}
	os.Exit(code)
}

// sharedRootfs is a busybox root filesystem built once per test binary:
// containers only mount over it inside their own mount namespaces.
var sharedRootfs string

func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates namespaces, mounts and cgroups")
	}
}

// busyboxRootfs returns a root filesystem with Debian's static busybox and
// its applet links in /bin.
func busyboxRootfs(tb testing.TB) string {
	tb.Helper()
	requireRoot(tb)
	if sharedRootfs != "" {
		return sharedRootfs
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		tb.Skip("needs Debian's busybox-static (apt-get install -y busybox-static)")
	}
	dir, err := os.MkdirTemp("", "berth-runtime-test-")
	if err != nil {
		tb.Fatal(err)
	}
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		tb.Fatal(err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		tb.Fatalf("busybox --list: %v", err)
	}
	for _, name := range strings.Fields(string(out)) {
		if name == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", name)); err != nil {
			tb.Fatal(err)
		}
	}
	// Mount points for the network files, as images and Docker provide:
	// a container root that is not the host's could not create them.
	for _, f := range []string{"hosts", "hostname", "resolv.conf"} {
		if err := os.WriteFile(filepath.Join(root, "etc", f), nil, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	// A file that exists but is not executable.
	if err := os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	sharedRootfs = root
	return root
}

var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// dockerSpec mirrors the config.json Docker 20.10 gives `docker run busybox`
// here (shared/reference/runtime/docker20-config.json), minus seccomp, hooks
// and cgroups, which tests add when they are about them.
func dockerSpec(rootfs, bundle string, args ...string) *specs.Spec {
	zero := 0
	return &specs.Spec{
		Version: "1.0.2-dev",
		Process: &specs.Process{
			User: specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}},
			Args: args,
			Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=8b6c6416f418"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: dockerCaps, Effective: dockerCaps, Permitted: dockerCaps,
			},
			OOMScoreAdj: &zero,
		},
		Root:     &specs.Root{Path: rootfs},
		Hostname: "8b6c6416f418",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}},
			{Destination: "/etc/resolv.conf", Type: "bind", Source: filepath.Join(bundle, "resolv.conf"), Options: []string{"rbind", "rprivate"}},
			{Destination: "/etc/hostname", Type: "bind", Source: filepath.Join(bundle, "hostname"), Options: []string{"rbind", "rprivate"}},
			{Destination: "/etc/hosts", Type: "bind", Source: filepath.Join(bundle, "hosts"), Options: []string{"rbind", "rprivate"}},
		},
		Linux: &specs.Linux{
			Sysctl: map[string]string{
				"net.ipv4.ip_unprivileged_port_start": "0",
				"net.ipv4.ping_group_range":           "0 2147483647",
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
			},
			MaskedPaths: []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// writeBundle writes spec as bundle/config.json plus the network files.
func writeBundle(tb testing.TB, bundle string, s *specs.Spec) {
	tb.Helper()
	files := map[string]string{
		"hosts":       "127.0.0.1\tlocalhost\n",
		"hostname":    s.Hostname + "\n",
		"resolv.conf": "nameserver 10.255.255.53\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(bundle, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	data, err := json.Marshal(s)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// newBundle returns a bundle dir and a Docker-like spec running args; the
// caller may edit the spec before writeBundle.
func newBundle(tb testing.TB, args ...string) (string, *specs.Spec) {
	tb.Helper()
	root := busyboxRootfs(tb)
	bundle := tb.TempDir()
	return bundle, dockerSpec(root, bundle, args...)
}

// result is what a container run produced.
type result struct {
	stdout, stderr string
	status         ExitStatus
}

// runBundle starts the bundle with rt, waits for it and collects its output.
func runBundle(tb testing.TB, rt Runtime, id, bundle string) (result, error) {
	tb.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := rt.Start(ctx, id, bundle, IO{Stdout: outW, Stderr: errW})
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return result{}, err
	}
	defer func() {
		if err := rt.Delete(context.Background(), id); err != nil {
			tb.Errorf("delete %s: %v", id, err)
		}
	}()
	var stdout, stderr bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&stderr, errR); errR.Close(); close(done) }()
	io.Copy(&stdout, outR)
	outR.Close()
	<-done
	st, err := p.Wait()
	if err != nil {
		tb.Fatalf("wait: %v", err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), status: st}, nil
}

func newTestRuntime(tb testing.TB, name string) Runtime {
	tb.Helper()
	if name == "berth-preboot" {
		return &prebootRuntime{tb: tb, stateDir: tb.TempDir(), rts: map[string]Runtime{}}
	}
	rt, err := New(Options{Name: name, StateDir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("runtime %q: %v", name, err)
	}
	return rt
}

// uniqueID gives each container a name no concurrent test run shares.
func uniqueID(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	return fmt.Sprintf("bt-%d-%s", os.Getpid(), name)
}
