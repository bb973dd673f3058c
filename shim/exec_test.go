package shim

import (
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime"
)

func execProcess(args ...string) *specs.Process {
	return &specs.Process{
		Args: args, Cwd: "/", Env: []string{"PATH=/bin"},
		Capabilities: &specs.LinuxCapabilities{},
	}
}

func waitExec(t *testing.T, done <-chan ExecExit) ExecExit {
	t.Helper()
	select {
	case e := <-done:
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("exec did not end")
	}
	return ExecExit{}
}

// Exec through a shim with the built-in runtime: pipes with stdin, a
// terminal with a resize, exit codes, errors, and nothing in the log.
func TestExecRealRuntime(t *testing.T) {
	if _, err := runtime.New(runtime.Options{}); err != nil {
		t.Skipf("runtime.New: %v", err)
	}
	runtimes := []string{""}
	if _, err := exec.LookPath("runc"); err == nil {
		runtimes = append(runtimes, "runc")
	}
	for _, rtName := range runtimes {
		name := rtName
		if name == "" {
			name = "builtin"
		}
		t.Run(name, func(t *testing.T) { testExec(t, rtName) })
	}
}

func testExec(t *testing.T, rtName string) {
	ctx := testCtx(t)
	cfg := newConfig(t)
	cfg.BundleDir = busyboxBundle(t, cfg.ID, false, "sh", "-c", "echo started; sleep 60")
	cfg.Runtime, cfg.RuntimeStateDir = rtName, t.TempDir()
	cl := launch(t, cfg)
	if _, err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cl.Signal(ctx, syscall.SIGKILL)
		cl.Wait(ctx)
		cl.Shutdown(ctx)
	}()

	t.Run("pipes", func(t *testing.T) {
		var out, errb syncBuffer
		pid, done, err := cl.Exec(ctx, ExecConfig{ID: "e1", Process: execProcess("sh", "-c", "cat; echo oops >&2; exit 7")},
			Streams{Stdin: strings.NewReader("from stdin\n"), Stdout: &out, Stderr: &errb})
		if err != nil {
			t.Fatal(err)
		}
		if pid <= 0 {
			t.Errorf("pid %d", pid)
		}
		e := waitExec(t, done)
		if e.Err != nil || e.Status.Code != 7 || out.String() != "from stdin\n" || errb.String() != "oops\n" {
			t.Fatalf("exit %+v stdout %q stderr %q", e, out.String(), errb.String())
		}
	})
	t.Run("tty", func(t *testing.T) {
		p := execProcess("sh", "-c", "read x; stty size; exit 2")
		p.Terminal = true
		pr, pw := io.Pipe()
		defer pw.Close()
		var out syncBuffer
		_, done, err := cl.Exec(ctx, ExecConfig{ID: "e2", Process: p}, Streams{Stdin: pr, Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ResizeExec(ctx, "e2", 25, 81); err != nil {
			t.Fatal(err)
		}
		pw.Write([]byte("go\n"))
		e := waitExec(t, done)
		if e.Status.Code != 2 || !strings.Contains(out.String(), "25 81\r\n") {
			t.Fatalf("exit %+v output %q", e, out.String())
		}
		if err := cl.ResizeExec(ctx, "e2", 25, 81); err == nil {
			t.Error("resize of a finished exec succeeded")
		}
	})
	t.Run("detached", func(t *testing.T) {
		_, done, err := cl.Exec(ctx, ExecConfig{ID: "e3", Process: execProcess("sh", "-c", "echo lost; exit 4")}, Streams{})
		if err != nil {
			t.Fatal(err)
		}
		if e := waitExec(t, done); e.Status.Code != 4 {
			t.Fatalf("exit %+v", e)
		}
	})
	t.Run("not found", func(t *testing.T) {
		_, _, err := cl.Exec(ctx, ExecConfig{ID: "e4", Process: execProcess("nosuch")}, Streams{})
		if err == nil || !strings.Contains(err.Error(), "executable file not found") {
			t.Fatalf("err %v", err)
		}
	})
	if got := readLog(t, cfg.LogPath); len(got) != 1 {
		t.Errorf("container log has exec output: %q", got)
	}
}
