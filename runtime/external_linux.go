package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/runtime/cgroups"
)

// external drives an OCI runtime binary with runc's command line:
// `create --bundle B --pid-file P [--console-socket S] id`, `start id`,
// `delete -f id`. The container process is left orphaned when `create`
// exits; the calling process is a child subreaper (set by New) so that it
// inherits and can reap it.
type external struct {
	opts   Options
	binary string
	root   string // the runtime's --root, under StateDir
}

func newExternal(opts Options) (*external, error) {
	bin, err := exec.LookPath(opts.Name)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("runtime %q: %w", opts.Name, err))
	}
	if opts.StateDir == "" {
		return nil, errdefs.InvalidParameter(fmt.Errorf("runtime %q: a state directory is required", opts.Name))
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("runtime %q: become child subreaper: %w", opts.Name, err)
	}
	root := filepath.Join(opts.StateDir, filepath.Base(bin))
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("runtime %q: %w", opts.Name, err)
	}
	return &external{opts: opts, binary: bin, root: root}, nil
}

func (r *external) command(ctx context.Context, logFile string, args ...string) *exec.Cmd {
	full := []string{"--root", r.root}
	if logFile != "" {
		full = append(full, "--log", logFile, "--log-format", "json")
	}
	return exec.CommandContext(ctx, r.binary, append(full, args...)...)
}

// Start implements Runtime.
func (r *external) Start(ctx context.Context, id, bundle string, stdio IO) (Process, error) {
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, err
	}
	s, err := loadSpec(bundle)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(r.opts.StateDir, "start-")
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	defer os.RemoveAll(dir)
	pidFile := filepath.Join(dir, "pid")
	logFile := filepath.Join(dir, "log.json")
	args := []string{"create", "--bundle", bundle, "--pid-file", pidFile}

	var consoleL *net.UnixListener
	if s.Process.Terminal {
		sock := filepath.Join(dir, "console.sock")
		consoleL, err = net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			return nil, fmt.Errorf("start %s: console socket: %w", id, err)
		}
		defer consoleL.Close()
		args = append(args, "--console-socket", sock)
	}
	args = append(args, id)

	type consoleResult struct {
		f   *os.File
		err error
	}
	consoleCh := make(chan consoleResult, 1)
	if consoleL != nil {
		go func() {
			f, err := receiveConsole(consoleL)
			consoleCh <- consoleResult{f, err}
		}()
	}

	create := r.command(ctx, logFile, args...)
	if !s.Process.Terminal {
		// The runtime hands its stdio to the container process.
		stdio.attach(create)
	}
	// No pipe for the runtime's own stderr: the container would inherit
	// it and Run would wait for the container. Errors come from the log.
	if err := create.Run(); err != nil {
		_ = r.command(context.Background(), "", "delete", "-f", id).Run()
		return nil, runtimeError(fmt.Sprintf("%s create", filepath.Base(r.binary)), logFile, "", err)
	}
	var console *os.File
	if consoleL != nil {
		res := <-consoleCh
		if res.err != nil {
			_ = r.command(context.Background(), "", "delete", "-f", id).Run()
			return nil, fmt.Errorf("start %s: console: %w", id, res.err)
		}
		console = res.f
	}
	pidData, err := os.ReadFile(pidFile)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidData)))
	if err != nil {
		return nil, fmt.Errorf("start %s: pid file: %w", id, err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	start := r.command(ctx, logFile, "start", id)
	if out, err := start.CombinedOutput(); err != nil {
		_ = r.command(context.Background(), "", "delete", "-f", id).Run()
		_, _ = proc.Wait()
		return nil, runtimeError(fmt.Sprintf("%s start", filepath.Base(r.binary)), logFile, string(out), err)
	}
	p := &initProcess{proc: proc, console: console, done: make(chan struct{})}
	if cg := s.Linux.CgroupsPath; cg != "" {
		// Only to read the OOM flag; the runtime owns the cgroup.
		if m, err := cgroups.New(cg); err == nil {
			p.cgroup = m
		}
	}
	go p.reap()
	return p, nil
}

// runtimeError builds an error from the runtime's JSON log (its last
// error-level messages), falling back to its stderr.
func runtimeError(what, logFile, stderr string, err error) error {
	msg := ""
	if f, ferr := os.Open(logFile); ferr == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var entry struct {
				Level string `json:"level"`
				Msg   string `json:"msg"`
			}
			if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Level == "error" {
				msg = entry.Msg
			}
		}
		f.Close()
	}
	if msg == "" {
		msg = strings.TrimSpace(stderr)
	}
	if msg == "" {
		return fmt.Errorf("%s: %w", what, err)
	}
	return initError(fmt.Sprintf("%s failed: %s", what, msg))
}

// receiveConsole accepts the runtime's connection on the console socket
// and takes the pty master it sends (SCM_RIGHTS).
func receiveConsole(l *net.UnixListener) (*os.File, error) {
	conn, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil || len(fds) == 0 {
			continue
		}
		for _, extra := range fds[1:] {
			unix.Close(extra)
		}
		unix.CloseOnExec(fds[0])
		return os.NewFile(uintptr(fds[0]), "pty-master"), nil
	}
	return nil, errors.New("no descriptor received")
}

// Delete implements Runtime.
func (r *external) Delete(ctx context.Context, id string) error {
	out, err := r.command(ctx, "", "delete", "-f", id).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "does not exist") || strings.Contains(string(out), "not exist") {
			return nil
		}
		return fmt.Errorf("%s delete %s: %s: %w", filepath.Base(r.binary), id, strings.TrimSpace(string(out)), err)
	}
	return nil
}
