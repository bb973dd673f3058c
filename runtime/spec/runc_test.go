package spec

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// busyboxRootfs makes a minimal rootfs with busybox and the applets the
// tests use.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.Open("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(root, "bin/busybox"), os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	for _, a := range []string{"sh", "cat", "id", "grep", "hostname", "touch", "echo", "env"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n")
	write(t, filepath.Join(root, "etc/group"), "root:x:0:\nwheel:x:10:root,alice\nalice:x:1000:\n")
	return root
}

// Generate's output runs under runc, and the process inside sees Docker's
// security settings.
func TestRuncRunsGeneratedConfig(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containers")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc not installed")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox not installed (apt-get install busybox-static)")
	}
	script := "grep -E '^(CapBnd|CapEff|CapInh|NoNewPrivs|Seccomp):' /proc/self/status; id; hostname; echo HOME=$HOME; " +
		"touch /tmp/x 2>/dev/null && echo rootfs-rw || echo rootfs-ro; cat /proc/kcore >/dev/null 2>&1 && echo kcore-readable || echo kcore-masked"
	tests := []struct {
		name string
		opts func(*Options)
		want []string
		bad  []string
	}{
		{"default", func(*Options) {}, []string{
			"CapBnd:\t00000000a80425fb", "CapEff:\t00000000a80425fb", "CapInh:\t0000000000000000",
			"NoNewPrivs:\t0", "Seccomp:\t2", "uid=0(root) gid=0(root) groups=0(root),10(wheel)",
			"HOME=/root", "rootfs-rw", "kcore-masked", "\ntesthost\n"}, nil},
		{"user, nnp, readonly, cap-drop all", func(o *Options) {
			o.User = "alice"
			o.SecurityOpt = []string{"no-new-privileges"}
			o.ReadonlyRootfs = true
			o.CapDrop = []string{"ALL"}
		}, []string{"CapBnd:\t0000000000000000", "NoNewPrivs:\t1", "uid=1000(alice) gid=1000(alice) groups=10(wheel),1000(alice)",
			"HOME=/home/alice", "rootfs-ro"}, nil},
		{"unconfined", func(o *Options) { o.SecurityOpt = []string{"seccomp=unconfined"} }, []string{"Seccomp:\t0"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rootfs := busyboxRootfs(t)
			b := make([]byte, 4)
			rand.Read(b)
			id := "berth-spectest-" + hex.EncodeToString(b)
			o := Options{ID: id, Rootfs: rootfs, Args: []string{"sh", "-c", script}, Hostname: "testhost",
				NetworkMode: "none", CgroupsPath: "/berth-spectest/" + id}
			tc.opts(&o)
			s, err := Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			bundle := t.TempDir()
			data, _ := json.Marshal(s)
			if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			state := t.TempDir()
			cmd := exec.Command(runc, "--root", state, "run", "--bundle", bundle, id)
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatal("runc timed out")
			}
			exec.Command(runc, "--root", state, "delete", "-f", id).Run()
			for _, dir := range []string{"memory", "cpu", "pids", "cpuset", "blkio", "devices", "freezer", "cpuacct", "systemd", "unified"} {
				unix.Rmdir(filepath.Join("/sys/fs/cgroup", dir, "berth-spectest"))
			}
			if err != nil {
				t.Fatalf("runc run: %v\n%s", err, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
