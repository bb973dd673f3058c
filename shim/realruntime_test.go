package shim

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/spec"
)

// busyboxBundle makes a bundle with a busybox root (Debian's static
// busybox and its applet links) and a Docker-default config for args.
func busyboxBundle(t *testing.T, id string, tty bool, args ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the real runtime creates namespaces, mounts and cgroups")
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("needs Debian's busybox-static (apt-get install -y busybox-static)")
	}
	bundle := t.TempDir()
	root := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range strings.Fields(string(out)) {
		if name != "busybox" {
			os.Symlink("busybox", filepath.Join(root, "bin", name))
		}
	}
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "group"), []byte("root:x:0:\n"), 0o644)
	s, err := spec.Generate(spec.Options{
		ID: id, Rootfs: root, Args: args, Tty: tty, Hostname: "shimtest",
		NetworkMode: "none", CgroupsPath: "/berth-shim-test/" + id,
	})
	if err != nil {
		t.Fatal(err)
	}
	data, _ = json.Marshal(s)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth-shim-test")
		for _, d := range append(dirs, "/sys/fs/cgroup/berth-shim-test") {
			os.Remove(d)
		}
	})
	return bundle
}

// A busybox container through the real runtime (built-in, and runc when
// installed): stdio, stdin, exit code, the log, a terminal, Delete.
func TestRealRuntime(t *testing.T) {
	runtimes := []string{""}
	if _, err := exec.LookPath("runc"); err == nil {
		runtimes = append(runtimes, "runc")
	}
	if _, err := runtime.New(runtime.Options{}); err != nil {
		t.Skipf("runtime.New: %v (the runtime is not merged yet)", err)
	}
	for _, rtName := range runtimes {
		name := rtName
		if name == "" {
			name = "builtin"
		}
		t.Run(name+"/pipes", func(t *testing.T) {
			ctx := testCtx(t)
			cfg := newConfig(t)
			cfg.BundleDir = busyboxBundle(t, cfg.ID, false, "sh", "-c", "echo hi; cat; echo err >&2; exit 3")
			cfg.Runtime, cfg.RuntimeStateDir = rtName, t.TempDir()
			cfg.OpenStdin, cfg.StdinOnce = true, true
			cl := launch(t, cfg)
			var stdout, stderr syncBuffer
			done, err := cl.Attach(ctx, Streams{Stdin: strings.NewReader("x\n"), Stdout: &stdout, Stderr: &stderr})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Start(ctx); err != nil {
				t.Fatal(err)
			}
			st, err := cl.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			waitDone(t, done)
			if st.Code != 3 || stdout.String() != "hi\nx\n" || stderr.String() != "err\n" {
				t.Fatalf("code %d stdout %q stderr %q", st.Code, stdout.String(), stderr.String())
			}
			if got := readLog(t, cfg.LogPath); len(got) != 3 {
				t.Fatalf("log: %q", got)
			}
			if err := cl.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(name+"/tty", func(t *testing.T) {
			ctx := testCtx(t)
			cfg := newConfig(t)
			cfg.BundleDir = busyboxBundle(t, cfg.ID, true, "sh", "-c", "read x; stty size; tty; exit 0")
			cfg.Runtime, cfg.RuntimeStateDir = rtName, t.TempDir()
			cfg.Tty, cfg.OpenStdin, cfg.StdinOnce = true, true, true
			cl := launch(t, cfg)
			pr, pw := io.Pipe()
			defer pw.Close()
			var out syncBuffer
			done, err := cl.Attach(ctx, Streams{Stdin: pr, Stdout: &out})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Start(ctx); err != nil {
				if rtName == "" && strings.Contains(err.Error(), "open /dev/ptmx: operation not permitted") {
					// Known runtime bug, reported: the device cgroup of a
					// generated spec lacks ptmx (c 5:2) and the ptys
					// (c 136:*), which runc allows implicitly.
					t.Skipf("built-in runtime cannot open /dev/ptmx under the generated device cgroup: %v", err)
				}
				t.Fatal(err)
			}
			if err := cl.Resize(ctx, 31, 99); err != nil {
				t.Fatal(err)
			}
			pw.Write([]byte("go\n"))
			st, err := cl.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			waitDone(t, done)
			if st.Code != 0 || !strings.Contains(out.String(), "31 99\r\n") || !strings.Contains(out.String(), "/dev/pts/") {
				t.Fatalf("code %d, tty output %q", st.Code, out.String())
			}
			if err := cl.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(name+"/kill", func(t *testing.T) {
			ctx := testCtx(t)
			cfg := newConfig(t)
			cfg.BundleDir = busyboxBundle(t, cfg.ID, false, "sleep", "60")
			cfg.Runtime, cfg.RuntimeStateDir = rtName, t.TempDir()
			cl := launch(t, cfg)
			pid, err := cl.Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			if err := cl.Signal(ctx, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if st, err := cl.Wait(ctx); err != nil || st.Code != 137 {
				t.Fatalf("wait: %+v %v", st, err)
			}
			if syscall.Kill(pid, 0) == nil {
				t.Errorf("container pid %d still exists (not reaped?)", pid)
			}
			if err := cl.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
