package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-dev/berth/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostRuntime is the one stand-in of these tests: it runs the bundle's
// process.args as a plain host process (no namespaces, no rootfs), with
// the stdio or the pty a runtime gives, so that the shim's own work is
// tested with real processes, pipes and terminals. The real runtime is
// exercised by TestRealRuntime.
const hostRuntimeName = "test-host-process"

func testRuntime(opts runtime.Options) (runtime.Runtime, error) {
	if opts.Name == hostRuntimeName {
		return &hostRuntime{}, nil
	}
	return runtime.New(opts)
}

type hostRuntime struct {
	mu      sync.Mutex
	bundles map[string]string
}

func (r *hostRuntime) Start(ctx context.Context, id, bundle string, stdio runtime.IO) (runtime.Process, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.bundles == nil {
		r.bundles = map[string]string{}
	}
	r.bundles[id] = bundle
	r.mu.Unlock()
	cmd := exec.Command(s.Process.Args[0], s.Process.Args[1:]...)
	cmd.Env = s.Process.Env
	p := &hostProcess{cmd: cmd, done: make(chan struct{})}
	if s.Process.Terminal {
		master, slave, err := openPty()
		if err != nil {
			return nil, err
		}
		defer slave.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		p.console = master
	} else {
		// Typed nils would not mean /dev/null to os/exec.
		if stdio.Stdin != nil {
			cmd.Stdin = stdio.Stdin
		}
		if stdio.Stdout != nil {
			cmd.Stdout = stdio.Stdout
		}
		if stdio.Stderr != nil {
			cmd.Stderr = stdio.Stderr
		}
	}
	if err := cmd.Start(); err != nil {
		if p.console != nil {
			p.console.Close()
		}
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	go p.reap()
	return p, nil
}

// Delete leaves a mark in the bundle, for tests to see it was called.
func (r *hostRuntime) Delete(ctx context.Context, id string) error {
	r.mu.Lock()
	bundle := r.bundles[id]
	r.mu.Unlock()
	if bundle == "" {
		return nil
	}
	return os.WriteFile(filepath.Join(bundle, "deleted"), []byte(id), 0o600)
}

type hostProcess struct {
	cmd     *exec.Cmd
	console *os.File
	done    chan struct{}
	status  runtime.ExitStatus
}

func (p *hostProcess) Pid() int          { return p.cmd.Process.Pid }
func (p *hostProcess) Console() *os.File { return p.console }

func (p *hostProcess) Signal(sig syscall.Signal) error {
	err := p.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal: %w", err)
	}
	return err
}

func (p *hostProcess) reap() {
	p.cmd.Wait()
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	p.status = runtime.ExitStatus{Code: ws.ExitStatus(), ExitedAt: time.Now()}
	if ws.Signaled() {
		p.status.Code, p.status.Signal = 128+int(ws.Signal()), ws.Signal()
	}
	close(p.done)
}

func (p *hostProcess) Wait() (runtime.ExitStatus, error) {
	<-p.done
	return p.status, nil
}

// openPty opens a new pty pair (master, slave).
func openPty() (*os.File, *os.File, error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	rc, err := master.SyscallConn()
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	var n uint32
	var ioErr error
	rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr == nil {
			n, ioErr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN)
		}
	})
	if ioErr != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlockpt/ptsname: %w", ioErr)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

type atomicInt = atomic.Int64
