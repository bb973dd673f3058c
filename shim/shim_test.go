package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/logs/jsonfile"
	"github.com/berth-dev/berth/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The test binary plays the berth binary's hidden modes: Launch re-executes
// /proc/self/exe as the shim, the built-in runtime re-executes it as the
// container init, and "__launcher" is a short-lived "daemon" that starts a
// container and exits.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case shimArg:
			os.Exit(serve(os.Args[2:], testRuntime))
		case "__init":
			runtime.InitMain()
			return
		case "__launcher":
			os.Exit(launcherMain(os.Args[2]))
		}
	}
	os.Exit(m.Run())
}

// launcherMain launches a shim for the config in cfgJSON, starts the
// container, prints its pid and exits, leaving both running.
func launcherMain(cfgJSON string) int {
	var cfg Config
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	cl, err := Launch(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pid, err := cl.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(pid)
	return 0
}

// hostBundle writes a bundle whose process runs args on the host (for
// hostRuntime).
func hostBundle(t *testing.T, tty bool, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	s := specs.Spec{Process: &specs.Process{Args: args, Terminal: tty, Env: []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C"}}}
	data, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newConfig is a config for a host-process container running args.
func newConfig(t *testing.T, args ...string) Config {
	t.Helper()
	dir := t.TempDir()
	return Config{
		ID:        "c" + strconv.FormatInt(time.Now().UnixNano(), 36),
		BundleDir: hostBundle(t, false, args...),
		StateDir:  filepath.Join(dir, "state"),
		LogPath:   filepath.Join(dir, "c-json.log"),
		Runtime:   hostRuntimeName,
	}
}

// launch starts a shim for cfg; cleanup kills what a failing test left.
func launch(t *testing.T, cfg Config) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := Launch(ctx, cfg)
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	t.Cleanup(func() { killLeftovers(cfg.StateDir, cl) })
	return cl
}

// killLeftovers kills the container and the shim of stateDir if running.
func killLeftovers(stateDir string, cl *Client) {
	if cl != nil {
		if pid := cl.Pid(); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		cl.Close()
	}
	if data, err := os.ReadFile(filepath.Join(stateDir, pidName)); err == nil {
		if pid, _ := strconv.Atoi(string(data)); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// readLog returns the log's entries as "stream:line".
func readLog(t *testing.T, path string) []string {
	t.Helper()
	ch, err := jsonfile.Read(context.Background(), path, jsonfile.ReadOptions{Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for e := range ch {
		out = append(out, e.Stream+":"+string(e.Line))
	}
	return out
}

func waitDone(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("attach did not end")
	}
}

// Output goes to the log and to attached clients, split by stream, and the
// exit code (or 128+signal) comes back through Wait.
func TestRunOutputAndExit(t *testing.T) {
	for _, tc := range []struct {
		name             string
		args             []string
		signal           syscall.Signal
		wantCode         int
		wantOut, wantErr string
	}{
		{"exit code", []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, 0, 3, "out\n", "err\n"},
		{"success", []string{"sh", "-c", "printf 'a\\nb\\n'"}, 0, 0, "a\nb\n", ""},
		{"signal", []string{"sh", "-c", "echo ready; exec sleep 60"}, syscall.SIGTERM, 128 + 15, "ready\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			cfg := newConfig(t, tc.args...)
			cl := launch(t, cfg)
			var stdout, stderr syncBuffer
			done, err := cl.Attach(ctx, Streams{Stdout: &stdout, Stderr: &stderr})
			if err != nil {
				t.Fatal(err)
			}
			pid, err := cl.Start(ctx)
			if err != nil || pid <= 0 || cl.Pid() != pid {
				t.Fatalf("start: pid %d (client says %d), %v", pid, cl.Pid(), err)
			}
			if tc.signal != 0 {
				for !strings.Contains(stdout.String(), "ready") {
					time.Sleep(10 * time.Millisecond)
				}
				if err := cl.Signal(ctx, tc.signal); err != nil {
					t.Fatal(err)
				}
			}
			st, err := cl.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			waitDone(t, done)
			if st.Code != tc.wantCode || st.ExitedAt.IsZero() {
				t.Errorf("exit status %+v, want code %d", st, tc.wantCode)
			}
			if stdout.String() != tc.wantOut || stderr.String() != tc.wantErr {
				t.Errorf("attached stdout %q stderr %q, want %q %q", stdout.String(), stderr.String(), tc.wantOut, tc.wantErr)
			}
			var wantLog []string
			for _, l := range strings.SplitAfter(tc.wantOut, "\n") {
				if l != "" {
					wantLog = append(wantLog, "stdout:"+l)
				}
			}
			var gotOut, gotErr []string
			for _, e := range readLog(t, cfg.LogPath) {
				if strings.HasPrefix(e, "stderr:") {
					gotErr = append(gotErr, e)
				} else {
					gotOut = append(gotOut, e)
				}
			}
			if strings.Join(gotOut, "") != strings.Join(wantLog, "") {
				t.Errorf("log stdout entries %q, want %q", gotOut, wantLog)
			}
			if tc.wantErr != "" && strings.Join(gotErr, "") != "stderr:"+tc.wantErr {
				t.Errorf("log stderr entries %q", gotErr)
			}
			if err := cl.Signal(ctx, syscall.SIGTERM); err == nil || !strings.Contains(err.Error(), "process already finished") {
				t.Errorf("signal after exit: %v", err)
			}
			if err := cl.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// `docker run -i IMAGE cat`: stdin given before the start reaches the
// container, and its end closes the container's stdin (StdinOnce).
func TestAttachStdinEcho(t *testing.T) {
	ctx := testCtx(t)
	cfg := newConfig(t, "cat")
	cfg.OpenStdin, cfg.StdinOnce = true, true
	cl := launch(t, cfg)
	var stdout syncBuffer
	done, err := cl.Attach(ctx, Streams{Stdin: strings.NewReader("hello\nworld\n"), Stdout: &stdout})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the stdin arrive before the start
	if _, err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := cl.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, done)
	if st.Code != 0 || stdout.String() != "hello\nworld\n" {
		t.Fatalf("cat: code %d, echoed %q", st.Code, stdout.String())
	}
	if got := readLog(t, cfg.LogPath); strings.Join(got, "|") != "stdout:hello\n|stdout:world\n" {
		t.Fatalf("log: %q", got)
	}
}

// Without StdinOnce, the end of a client's stdin ends that client's attach
// but leaves the container's stdin open for the next client.
func TestStdinStaysOpenWithoutStdinOnce(t *testing.T) {
	ctx := testCtx(t)
	cfg := newConfig(t, "cat")
	cfg.OpenStdin = true
	cl := launch(t, cfg)
	if _, err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var out1 syncBuffer
	done1, err := cl.Attach(ctx, Streams{Stdin: strings.NewReader("one\n"), Stdout: &out1})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, done1)
	for len(readLog(t, cfg.LogPath)) == 0 {
		time.Sleep(10 * time.Millisecond) // "one" echoed
	}
	// The container is still there, reading.
	pr, pw := io.Pipe()
	var out2 syncBuffer
	done2, err := cl.Attach(ctx, Streams{Stdin: pr, Stdout: &out2})
	if err != nil {
		t.Fatal(err)
	}
	pw.Write([]byte("two\n"))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out2.String(), "two\n") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if out2.String() != "two\n" {
		t.Fatalf("second client got %q", out2.String())
	}
	if err := cl.Signal(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st, err := cl.Wait(ctx)
	if err != nil || st.Code != 137 {
		t.Fatalf("wait: %+v %v", st, err)
	}
	waitDone(t, done2)
	pw.Close()
	if got := readLog(t, cfg.LogPath); strings.Join(got, "|") != "stdout:one\n|stdout:two\n" {
		t.Fatalf("log: %q", got)
	}
}

// A container with a terminal: output and input go through the pty, the
// log gets it as stdout, and Resize (before and after the start) sets the
// size the process sees. (A size given before the start is applied right
// after it; the size a process sees from its first instruction is the
// spec's process.consoleSize, the runtime's business.)
func TestTty(t *testing.T) {
	ctx := testCtx(t)
	cfg := newConfig(t)
	cfg.BundleDir = hostBundle(t, true, "sh", "-c", `read x; stty size; read y; stty size; echo "got[$x$y]"; tty >/dev/null && echo is-a-tty`)
	cfg.Tty, cfg.OpenStdin, cfg.StdinOnce = true, true, true
	cl := launch(t, cfg)
	if err := cl.Resize(ctx, 20, 60); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	var out syncBuffer
	done, err := cl.Attach(ctx, Streams{Stdin: pr, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pw.Write([]byte("a\n"))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "20 60") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := cl.Resize(ctx, 33, 77); err != nil {
		t.Fatal(err)
	}
	pw.Write([]byte("b\n"))
	st, err := cl.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, done)
	got := out.String()
	for _, want := range []string{"a\r\n20 60\r\n", "b\r\n33 77\r\n", "got[ab]\r\n", "is-a-tty\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("tty output %q lacks %q", got, want)
		}
	}
	if st.Code != 0 {
		t.Errorf("exit code %d", st.Code)
	}
	entries := readLog(t, cfg.LogPath)
	if len(entries) == 0 || !strings.Contains(strings.Join(entries, ""), "stdout:got[ab]\r\n") {
		t.Errorf("log: %q", entries)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e, "stdout:") {
			t.Errorf("tty log entry not on stdout: %q", e)
		}
	}
}

// The daemon drops its client (as when it restarts) and connects again:
// the container runs on, and signals and Wait work through the new client.
func TestReconnect(t *testing.T) {
	ctx := testCtx(t)
	cfg := newConfig(t, "sh", "-c", `trap 'echo bye; exit 7' TERM; echo up; while :; do sleep 0.05; done`)
	cl := launch(t, cfg)
	var out syncBuffer
	if _, err := cl.Attach(ctx, Streams{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	pid, err := cl.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitC := make(chan error, 1)
	go func() { _, err := cl.Wait(ctx); waitC <- err }()
	for !strings.Contains(out.String(), "up") {
		time.Sleep(10 * time.Millisecond)
	}
	// Give the Wait time to be sent: only a Wait in flight is the point.
	time.Sleep(200 * time.Millisecond)
	cl.Close()
	// New calls on a closed client fail with net.ErrClosed; the Wait in
	// flight is not cut short (the daemon would read that as a death).
	if _, err := cl.Wait(ctx); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Wait after Close: %v, want net.ErrClosed", err)
	}
	select {
	case err := <-waitC:
		t.Fatalf("the Wait in flight ended with the Close: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if syscall.Kill(pid, 0) != nil {
		t.Fatal("the container died with the client")
	}
	cl2, err := Connect(ctx, cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	if cl2.Pid() != pid {
		t.Fatalf("reconnected client says pid %d, want %d", cl2.Pid(), pid)
	}
	if err := cl2.Signal(ctx, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st, err := cl2.Wait(ctx)
	if err != nil || st.Code != 7 {
		t.Fatalf("wait after reconnect: %+v, %v", st, err)
	}
	if err := <-waitC; err != nil {
		t.Fatalf("the first client's Wait: %v", err)
	}
	// Wait answers again at once for the next caller.
	if st2, err := cl2.Wait(ctx); err != nil || st2 != st {
		t.Fatalf("second wait: %+v, %v", st2, err)
	}
	if got := readLog(t, cfg.LogPath); strings.Join(got, "|") != "stdout:up\n|stdout:bye\n" {
		t.Fatalf("log: %q", got)
	}
}

// The shim outlives the process that launched it (the daemon): a launcher
// process starts the container and exits; a new client finds the shim,
// and the shim is not in the launcher's session.
func TestShimOutlivesLauncher(t *testing.T) {
	ctx := testCtx(t)
	cfg := newConfig(t, "sh", "-c", `read x; exit $x`)
	cfg.OpenStdin = true
	data, _ := json.Marshal(cfg)
	out, err := exec.CommandContext(ctx, os.Args[0], "__launcher", string(data)).Output()
	if err != nil {
		t.Fatalf("launcher: %v %s", err, out)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	t.Cleanup(func() { killLeftovers(cfg.StateDir, nil); syscall.Kill(pid, syscall.SIGKILL) })
	cl, err := Connect(ctx, cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if cl.Pid() != pid || pid <= 0 {
		t.Fatalf("pid %d, launcher printed %d", cl.Pid(), pid)
	}
	shimPid := readPid(t, cfg.StateDir)
	if sid, _ := unix.Getsid(shimPid); sid != shimPid {
		t.Errorf("shim %d is in session %d, not its own", shimPid, sid)
	}
	done, err := cl.Attach(ctx, Streams{Stdin: strings.NewReader("5\n")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := cl.Wait(ctx)
	if err != nil || st.Code != 5 {
		t.Fatalf("wait: %+v %v", st, err)
	}
	waitDone(t, done)
	if err := cl.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func readPid(t *testing.T, stateDir string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stateDir, pidName))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(data))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// After Shutdown the shim is gone, its socket removed, the runtime's
// Delete done, and the exit status still readable from the state dir.
func TestExitStatusAfterShimGone(t *testing.T) {
	ctx := testCtx(t)
	if _, ok, err := ReadExitStatus(t.TempDir()); ok || err != nil {
		t.Fatalf("empty state dir: ok %v err %v", ok, err)
	}
	cfg := newConfig(t, "sh", "-c", "exit 42")
	cl := launch(t, cfg)
	shimPid := readPid(t, cfg.StateDir)
	if err := cl.Shutdown(ctx); err != nil {
		// Before the start there is nothing running: shutting down is fine,
		// but this test wants a run: launch again.
		t.Fatal(err)
	}
	waitGone(t, shimPid)
	cfg.StateDir += "2"
	cl = launch(t, cfg)
	shimPid = readPid(t, cfg.StateDir)
	if _, err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := cl.Wait(ctx)
	if err != nil || st.Code != 42 {
		t.Fatalf("wait: %+v %v", st, err)
	}
	if err := cl.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	waitGone(t, shimPid)
	if _, err := os.Stat(filepath.Join(cfg.StateDir, socketName)); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	if _, err := Connect(ctx, cfg.StateDir); err == nil {
		t.Error("connected to a shim that is gone")
	}
	got, ok, err := ReadExitStatus(cfg.StateDir)
	if err != nil || !ok || got.Code != 42 || !got.ExitedAt.Equal(st.ExitedAt) {
		t.Fatalf("recorded status %+v ok %v err %v, want %+v", got, ok, err, st)
	}
	if _, err := os.Stat(filepath.Join(cfg.BundleDir, "deleted")); err != nil {
		t.Errorf("the runtime's Delete was not called: %v", err)
	}
	// A second Shutdown of a gone shim is not an error.
	if err := cl.Shutdown(ctx); err != nil {
		t.Errorf("shutdown of a gone shim: %v", err)
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("shim %d still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The shim refuses to go while its container runs.
func TestShutdownRefusedWhileRunning(t *testing.T) {
	ctx := testCtx(t)
	cl := launch(t, newConfig(t, "sleep", "60"))
	if _, err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.Shutdown(ctx); err == nil || !strings.Contains(err.Error(), "running") {
		t.Fatalf("shutdown while running: %v", err)
	}
	cl.Signal(ctx, syscall.SIGKILL)
	if st, err := cl.Wait(ctx); err != nil || st.Code != 137 {
		t.Fatalf("wait: %+v %v", st, err)
	}
	if err := cl.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// A start failure comes back with the runtime's words; attached clients
// are let go and the shim can be shut down.
func TestStartFailure(t *testing.T) {
	ctx := testCtx(t)
	cfg := newConfig(t, "/nonexistent/berth-test-binary")
	cl := launch(t, cfg)
	done, err := cl.Attach(ctx, Streams{Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Start(ctx); err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("start: %v", err)
	}
	waitDone(t, done)
	if _, err := cl.Wait(ctx); err == nil {
		t.Fatal("wait after a failed start returned no error")
	}
	if err := cl.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ReadExitStatus(cfg.StateDir); ok {
		t.Fatal("an exit status was recorded for a container that never ran")
	}
}

// blockedWriter never returns until released: an attached client that
// does not read.
type blockedWriter struct{ release chan struct{} }

func (w blockedWriter) Write(p []byte) (int, error) {
	<-w.release
	return 0, io.ErrClosedPipe
}

// A client that does not read holds up neither the container nor the log.
func TestSlowClientDoesNotBlockContainer(t *testing.T) {
	ctx := testCtx(t)
	// 8 MiB in 128 chunks of 64 KiB: a process start between chunks paces
	// the output, so that the reading client keeps within its backlog even
	// on a loaded machine, while the other one falls far behind it.
	const chunks, chunk = 128, 64 << 10
	const size = chunks * chunk
	cfg := newConfig(t, "sh", "-c", fmt.Sprintf("for i in $(seq %d); do head -c %d /dev/zero | tr '\\0' 'x' | fold -w 1024; done", chunks, chunk))
	cfg.LogMaxSize = 64 << 20
	cl := launch(t, cfg)
	slow := blockedWriter{release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(slow.release) }) }
	defer release()
	slowDone, err := cl.Attach(ctx, Streams{Stdout: slow})
	if err != nil {
		t.Fatal(err)
	}
	var fastN countWriter
	fastDone, err := cl.Attach(ctx, Streams{Stdout: &fastN})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := cl.Wait(ctx)
	if err != nil || st.Code != 0 {
		t.Fatalf("wait: %+v %v", st, err)
	}
	waitDone(t, fastDone)
	// The slow client was cut off (its connection closed under it).
	release()
	waitDone(t, slowDone)
	var logged int
	for _, e := range readLog(t, cfg.LogPath) {
		logged += len(strings.TrimSuffix(strings.TrimPrefix(e, "stdout:"), "\n")) // fold added the newlines
	}
	if logged != size {
		t.Errorf("log holds %d bytes, want %d", logged, size)
	}
	// fold puts a newline between lines of 1024 bytes: 63 per chunk.
	if want := int64(size + chunks*(chunk/1024-1)); fastN.n.Load() != want {
		t.Errorf("the reading client got %d bytes, want %d", fastN.n.Load(), want)
	}
}

type countWriter struct{ n atomicInt }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// The log rotates at LogMaxSize, keeping LogMaxFiles files, and what is
// kept reads back in order.
func TestLogRotation(t *testing.T) {
	ctx := testCtx(t)
	cfg := newConfig(t, "sh", "-c", `i=0; while [ $i -lt 400 ]; do echo "line $i"; i=$((i+1)); done`)
	cfg.LogMaxSize, cfg.LogMaxFiles = 4000, 3
	cl := launch(t, cfg)
	if _, err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := cl.Wait(ctx); err != nil || st.Code != 0 {
		t.Fatalf("wait: %+v %v", st, err)
	}
	for _, p := range []string{cfg.LogPath, cfg.LogPath + ".1", cfg.LogPath + ".2"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("rotated file missing: %v", err)
		}
		if st.Size() > cfg.LogMaxSize {
			t.Errorf("%s has %d bytes, over %d", p, st.Size(), cfg.LogMaxSize)
		}
	}
	if _, err := os.Stat(cfg.LogPath + ".3"); err == nil {
		t.Errorf("more than %d files kept", cfg.LogMaxFiles)
	}
	entries := readLog(t, cfg.LogPath)
	if len(entries) < 50 || len(entries) >= 400 {
		t.Fatalf("%d entries kept", len(entries))
	}
	first := 400 - len(entries)
	for i, e := range entries {
		if want := fmt.Sprintf("stdout:line %d\n", first+i); e != want {
			t.Fatalf("entry %d: %q, want %q", i, e, want)
		}
	}
}

// A state dir whose socket path does not fit a sockaddr_un still works.
func TestLongStateDir(t *testing.T) {
	ctx := testCtx(t)
	cfg := newConfig(t, "sh", "-c", "exit 9")
	cfg.StateDir = filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if len(filepath.Join(cfg.StateDir, socketName)) < maxSocketPath {
		t.Fatal("path not long enough for the test")
	}
	cl := launch(t, cfg)
	if _, err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := cl.Wait(ctx); err != nil || st.Code != 9 {
		t.Fatalf("wait: %+v %v", st, err)
	}
	if err := cl.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// Output a short-lived process wrote to stdout and then to stderr is logged
// in that order (the two pipes alone would not say which came first).
func TestLogKeepsStdoutThenStderrOrder(t *testing.T) {
	ctx := testCtx(t)
	for i := 0; i < 5; i++ {
		cfg := newConfig(t, "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; echo err >&2")
		cl := launch(t, cfg)
		if _, err := cl.Start(ctx); err != nil {
			t.Fatal(err)
		}
		cl.Wait(ctx)
		cl.Shutdown(ctx)
		got := strings.Join(readLog(t, cfg.LogPath), "")
		if want := "stdout:line1\nstdout:line2\nstdout:line3\nstdout:line4\nstdout:line5\nstderr:err\n"; got != want {
			t.Fatalf("run %d: log %q, want %q", i, got, want)
		}
	}
}
