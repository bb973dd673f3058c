package runtime

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// execIn runs proc in a running container and collects its output.
func execIn(t *testing.T, rt Execer, id, bundle string, proc *specs.Process) (stdout, stderr string, st ExitStatus, err error) {
	t.Helper()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := rt.Exec(ctx, id, bundle, proc, IO{Stdout: outW, Stderr: errW})
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return "", "", st, err
	}
	var ob, eb bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&eb, errR); errR.Close(); close(done) }()
	io.Copy(&ob, outR)
	outR.Close()
	<-done
	st, werr := p.Wait()
	if werr != nil {
		t.Fatalf("wait exec: %v", werr)
	}
	return ob.String(), eb.String(), st, nil
}

// TestExecJoinsContainer checks that an exec'd process shares the
// container's namespaces and cgroup and gets the process spec's user, env,
// cwd and capabilities, and that bad commands fail with Docker's words.
func TestExecJoinsContainer(t *testing.T) {
	busyboxRootfs(t)
	t.Cleanup(removeTestCgroupParents)
	rt := newBuiltin(Options{StateDir: t.TempDir(), CgroupParent: "/berth-test"})
	bundle, s := newBundle(t, "sh", "-c", "echo container > /tmp/mark; sleep 100")
	s.Linux.CgroupsPath = "/berth-test/" + uniqueID(t)
	s.Linux.Resources = &specs.LinuxResources{}
	writeBundle(t, bundle, s)
	id := uniqueID(t)
	p, err := rt.Start(context.Background(), id, bundle, IO{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Delete(context.Background(), id)
	defer p.Signal(syscall.SIGKILL)
	// Wait until the container wrote its mark.
	for i := 0; i < 100; i++ {
		if _, err := os.Stat("/proc/" + itoa(p.Pid()) + "/root/tmp/mark"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	hostNS := func(ns string) string {
		l, _ := os.Readlink("/proc/" + itoa(p.Pid()) + "/ns/" + ns)
		return l
	}
	base := *s.Process
	tests := []struct {
		name     string
		edit     func(*specs.Process)
		wantOut  string
		wantErr  string
		wantCode int
	}{
		{name: "sees container", edit: func(pr *specs.Process) {
			pr.Args = []string{"sh", "-c", "cat /tmp/mark; hostname; echo $$; for n in net mnt ipc; do readlink /proc/self/ns/$n; done; pwd"}
		}, wantOut: "container\n8b6c6416f418\n"},
		{name: "user env cwd", edit: func(pr *specs.Process) {
			pr.Args = []string{"sh", "-c", "id -u; id -g; echo $FOO; pwd; grep CapEff /proc/self/status; exit 3"}
			pr.User = specs.User{UID: 1000, GID: 1001}
			pr.Env = append(pr.Env, "FOO=bar")
			pr.Cwd = "/tmp"
		}, wantOut: "1000\n1001\nbar\n/tmp\nCapEff:\t0000000000000000\n", wantCode: 3},
		{name: "not found", edit: func(pr *specs.Process) { pr.Args = []string{"nosuchcmd"} }, wantErr: "executable file not found in $PATH"},
		{name: "directory", edit: func(pr *specs.Process) { pr.Args = []string{"/tmp"} }, wantErr: "is a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pr := base
			pr.Env = append([]string{}, base.Env...)
			tc.edit(&pr)
			out, stderr, st, err := execIn(t, rt, id, bundle, &pr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out, tc.wantOut) || st.Code != tc.wantCode {
				t.Fatalf("out %q (stderr %q) code %d, want prefix %q code %d", out, stderr, st.Code, tc.wantOut, tc.wantCode)
			}
			if tc.name == "sees container" {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if len(lines) != 7 {
					t.Fatalf("output %q", out)
				}
				// Not pid 1 (the container's init is), but a small pid of the container's namespace.
				if lines[2] == "1" || len(lines[2]) > 3 {
					t.Errorf("exec pid %s: not in the container's pid namespace", lines[2])
				}
				for i, ns := range []string{"net", "mnt", "ipc"} {
					if lines[3+i] != hostNS(ns) {
						t.Errorf("%s namespace %s, container's %s", ns, lines[3+i], hostNS(ns))
					}
				}
			}
		})
	}
	t.Run("cgroup", func(t *testing.T) {
		pr := base
		pr.Args = []string{"cat", "/proc/self/cgroup"}
		out, _, _, err := execIn(t, rt, id, bundle, &pr)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile("/proc/" + itoa(p.Pid()) + "/cgroup")
		if out != string(want) || !strings.Contains(out, s.Linux.CgroupsPath) {
			t.Errorf("exec cgroups %q, container's %q", out, want)
		}
	})
	t.Run("tty", func(t *testing.T) {
		pr := base
		pr.Args = []string{"sh", "-c", "tty; stty size"}
		pr.Terminal = true
		pr.ConsoleSize = &specs.Box{Height: 20, Width: 70}
		ep, err := rt.Exec(context.Background(), id, bundle, &pr, IO{})
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		done := make(chan struct{})
		go func() { io.Copy(&out, ep.Console()); close(done) }()
		if st, err := ep.Wait(); err != nil || st.Code != 0 {
			t.Fatalf("status %+v %v", st, err)
		}
		<-done
		ep.Console().Close()
		if !strings.HasPrefix(out.String(), "/dev/pts/") || !strings.Contains(out.String(), "20 70") {
			t.Errorf("tty output %q", out.String())
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
