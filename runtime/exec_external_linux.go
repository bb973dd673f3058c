package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/errdefs"
)

// Exec implements Execer with `exec --detach --process P --pid-file F
// [--console-socket S] id`: the process is orphaned when the runtime
// exits, and the caller (a child subreaper) reaps it.
func (r *external) Exec(ctx context.Context, id, bundle string, proc *specs.Process, stdio IO) (Process, error) {
	if proc == nil || len(proc.Args) == 0 {
		return nil, errdefs.InvalidParameter(errors.New("exec: no command"))
	}
	dir, err := os.MkdirTemp(r.opts.StateDir, "exec-")
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer os.RemoveAll(dir)
	data, err := json.Marshal(proc)
	if err != nil {
		return nil, err
	}
	procFile := filepath.Join(dir, "process.json")
	if err := os.WriteFile(procFile, data, 0o600); err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	pidFile := filepath.Join(dir, "pid")
	logFile := filepath.Join(dir, "log.json")
	args := []string{"exec", "--detach", "--process", procFile, "--pid-file", pidFile}
	var consoleCh chan consoleResult
	if proc.Terminal {
		sock := filepath.Join(dir, "console.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			return nil, fmt.Errorf("exec in %s: console socket: %w", id, err)
		}
		defer l.Close()
		args = append(args, "--console-socket", sock)
		consoleCh = make(chan consoleResult, 1)
		go func() {
			f, err := receiveConsole(l)
			consoleCh <- consoleResult{f, err}
		}()
	}
	args = append(args, id)
	cmd := r.command(ctx, logFile, args...)
	if !proc.Terminal {
		stdio.attach(cmd)
	}
	if err := cmd.Run(); err != nil {
		return nil, runtimeError(filepath.Base(r.binary)+" exec", logFile, "", err)
	}
	var console *os.File
	if consoleCh != nil {
		res := <-consoleCh
		if res.err != nil {
			return nil, fmt.Errorf("exec in %s: console: %w", id, res.err)
		}
		console = res.f
	}
	pidData, err := os.ReadFile(pidFile)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidData)))
	if err != nil {
		return nil, fmt.Errorf("exec in %s: pid file: %w", id, err)
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil, err
	}
	ip := &initProcess{proc: p, console: console, done: make(chan struct{})}
	go ip.reap()
	return ip, nil
}

type consoleResult struct {
	f   *os.File
	err error
}
