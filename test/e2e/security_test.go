package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// securityProbe prints what a process sees of its confinement: capability
// sets, seccomp and no_new_privs, the mount table, its namespaces, /dev,
// the masked and read-only paths, and its identity.
const securityProbe = `
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status
echo "== mounts"
awk '$2=="/"{print $2, $3, substr($4, 1, 2); next}{print $2, $3, $4}' /proc/self/mounts
echo "== ns"
for n in cgroup ipc mnt net pid time user uts; do echo "$n $(readlink /proc/self/ns/$n)"; done
echo "== dev"
ls -l /dev | awk 'NR>1{print $1, $5, $6, $NF}'
echo "== masked"
for p in /proc/asound /proc/acpi /proc/kcore /proc/keys /proc/latency_stats /proc/timer_list /proc/timer_stats /proc/sched_debug /proc/scsi /sys/firmware; do echo "$p $(cat $p 2>/dev/null | wc -c) $(ls $p 2>/dev/null | wc -l)"; done
echo "== readonly"
for p in /proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger /sys/kernel /sys/fs/cgroup/memory; do mkdir $p/probe 2>/dev/null; echo "$p $?"; done
echo "== host reach"
(kill -0 1 && echo signal-own-init) 2>&1
(mount -t tmpfs none /mnt 2>&1 >/dev/null || echo mount-refused)
(date -s 2000-01-01 >/dev/null 2>&1 || echo clock-refused)
(mknod /tmp/sda b 8 0 2>/dev/null && (head -c1 /tmp/sda >/dev/null 2>&1 || echo blockdev-refused)) || echo mknod-refused
echo "== identity"
id
hostname | wc -c
`

// dockerd is a private Docker daemon for comparisons.
type dockerd struct {
	sock string
	cmd  *exec.Cmd
	dir  string
}

// startDockerd runs Debian's dockerd on its own roots, or skips.
func startDockerd(t *testing.T) *dockerd {
	t.Helper()
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skip("dockerd is not installed (apt-get install docker.io)")
	}
	dir, err := os.MkdirTemp("", "berth-dk-")
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerd{sock: filepath.Join(dir, "docker.sock"), dir: dir}
	logf, _ := os.Create(filepath.Join(dir, "dockerd.log"))
	d.cmd = exec.Command(bin, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "run"),
		"-H", "unix://"+d.sock, "--pidfile", filepath.Join(dir, "docker.pid"),
		"--bridge=none", "--iptables=false", "--ip6tables=false")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Skipf("dockerd did not start: %v", err)
	}
	t.Cleanup(func() { d.stop(); logf.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", d.sock); err == nil {
			c.Close()
			if d.run(t, "", "version").code == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Skipf("dockerd did not answer within 30s:\n%s", tail(string(log), 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	tarball, err := busyboxTar()
	if err != nil {
		t.Fatal(err)
	}
	if r := d.run(t, string(tarball), "import", "-", "busybox:latest"); r.code != 0 {
		t.Fatalf("import busybox into dockerd: %s", r)
	}
	return d
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (d *dockerd) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerBin, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+filepath.Join(d.dir, "cfg"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	return r
}

func (d *dockerd) stop() {
	if d.cmd.Process == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	os.RemoveAll(d.dir)
}

// normalizeProbe makes two probes comparable: namespaces become "host" or
// "private" (inode numbers differ), and the mount table is sorted (the
// order of independent mounts is not a property of the confinement).
func normalizeProbe(out string) string {
	var b strings.Builder
	section := ""
	var mounts []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "== ") {
			if section == "== mounts" {
				sort.Strings(mounts)
				b.WriteString(strings.Join(mounts, "\n") + "\n")
			}
			section = line
			b.WriteString(line + "\n")
			continue
		}
		switch section {
		case "== mounts":
			mounts = append(mounts, line)
			continue
		case "== ns":
			name, link, _ := strings.Cut(line, " ")
			host, _ := os.Readlink("/proc/self/ns/" + name)
			where := "private"
			if link == host {
				where = "host"
			}
			line = name + " " + where
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func TestSecurityMatchesDocker(t *testing.T) {
	e := need(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to run dockerd")
	}
	dk := startDockerd(t)
	cases := []struct {
		name string
		args []string
	}{
		{"default", nil},
		{"read-only", []string{"--read-only"}},
		{"cap-drop all no-new-privileges", []string{"--cap-drop", "ALL", "--cap-add", "CHOWN", "--security-opt", "no-new-privileges"}},
		{"cap-add", []string{"--cap-add", "SYS_ADMIN", "--cap-drop", "NET_RAW"}},
		{"seccomp unconfined", []string{"--security-opt", "seccomp=unconfined"}},
		{"user and groups", []string{"--user", "1000:1000", "--group-add", "10"}},
		{"host namespaces", []string{"--pid", "host", "--ipc", "host", "--uts", "host"}},
		{"shm and tmpfs", []string{"--shm-size", "8m", "--tmpfs", "/run:size=1m"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"run", "--rm", "--network", "none"}, tc.args...), "busybox", "sh", "-c", securityProbe)
			want := dk.run(t, "", args...)
			got := e.docker(t, "", args...)
			if want.code != 0 || got.code != 0 {
				t.Fatalf("probe failed:\ndocker: %s\nberth: %s", want, got)
			}
			w, g := normalizeProbe(want.stdout), normalizeProbe(got.stdout)
			if w != g {
				t.Errorf("berth's container differs from Docker's:\n%s", lineDiff(w, g))
			}
		})
	}
}

// lineDiff lists the lines only one side has.
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var b strings.Builder
	for l, n := range count {
		switch {
		case n > 0:
			fmt.Fprintf(&b, "- docker: %s\n", l)
		case n < 0:
			fmt.Fprintf(&b, "+ berth:  %s\n", l)
		}
	}
	return b.String()
}
