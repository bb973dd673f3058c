package shim

import (
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
	"sync"
	"syscall"
	"time"
)

// Launcher launches shims, keeping one booted in advance (from the first
// launch on) so that a container start does not wait for a process to boot.
type Launcher struct {
	dir      string
	exe      string
	mu       sync.Mutex
	warm     string // socket name of the waiting shim in dir, "" if none
	warmProc *os.Process
	filling  bool
	closed   bool
	n        int
	disabled bool          // BERTH_NO_WARM_SHIM=1 turns prebooting off, for comparisons
	preboot  bool          // waiting shims also boot their container's init
	filled   chan struct{} // closed when the boot in progress ends
}

// PrebootInits makes the waiting shims boot a container init for the
// built-in runtime too (see runtime.Preboot). Call it before the first Launch.
func (l *Launcher) PrebootInits() {
	l.mu.Lock()
	l.preboot = true
	l.mu.Unlock()
}

// NewLauncher keeps the waiting shim's socket in dir.
func NewLauncher(dir string) (*Launcher, error) {
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("shim launcher: %w", err)
	}
	return &Launcher{dir: dir, exe: "/proc/self/exe", disabled: os.Getenv("BERTH_NO_WARM_SHIM") == "1"}, nil
}

// Launch is like the Launch function, using the waiting shim when one is ready.
func (l *Launcher) Launch(ctx context.Context, cfg Config) (*Client, error) {
	if l.disabled {
		return launchExe(ctx, cfg, l.exe)
	}
	l.mu.Lock()
	if l.warm == "" && l.filling {
		// One is booting: it is ready sooner than a shim started now.
		filled := l.filled
		l.mu.Unlock()
		select {
		case <-filled:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
		l.mu.Lock()
	}
	name, proc := l.warm, l.warmProc
	l.warm, l.warmProc = "", nil
	l.mu.Unlock()
	// The next one boots once this container has started (Refill), so as
	// not to compete with it; this is the fallback if nobody says so.
	time.AfterFunc(100*time.Millisecond, l.refill)
	if name != "" {
		if err := writeConfig(cfg); err != nil {
			return nil, err
		}
		pid, err := l.configure(ctx, name, cfg.StateDir)
		if err == nil && pid > 0 {
			return &Client{stateDir: cfg.StateDir, conns: map[net.Conn]struct{}{}, pid: pid}, nil
		}
		if err == nil {
			return Connect(ctx, cfg.StateDir)
		}
		// It may have half-configured itself: it must not survive beside
		// the shim launched in its place.
		proc.Kill()

	}
	return launchExe(ctx, cfg, l.exe)
}

func writeConfig(cfg Config) error {
	if cfg.StateDir == "" || cfg.ID == "" {
		return errors.New("launch shim: ID and StateDir are required")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("launch shim: %w", err)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("launch shim: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.StateDir, configName), data, 0o600); err != nil {
		return fmt.Errorf("launch shim: %w", err)
	}
	return nil
}

// configure hands the waiting shim its container's state dir and waits
// until it listens there; it returns the shim's pid.
func (l *Launcher) configure(ctx context.Context, name, stateDir string) (int, error) {
	conn, err := dialNamed(ctx, l.dir, name)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	data, _ := json.Marshal(struct {
		StateDir string `json:"stateDir"`
	}{stateDir})
	if _, err := conn.Write(append(data, '\n')); err != nil {
		return 0, err
	}
	var res response
	if err := json.NewDecoder(conn).Decode(&res); err != nil {
		return 0, err
	}
	if res.Error != "" {
		return 0, errors.New(res.Error)
	}
	return res.Pid, nil
}

// Refill boots the next waiting shim now (the daemon calls it once a
// container it launched has started).
func (l *Launcher) Refill() { go l.refill() }

func (l *Launcher) refill() {
	l.mu.Lock()
	if l.closed || l.warm != "" || l.filling {
		l.mu.Unlock()
		return
	}
	l.filling = true
	l.filled = make(chan struct{})
	filled := l.filled
	l.n++
	name := "w" + strconv.Itoa(l.n) + ".sock"
	pre := l.preboot
	l.mu.Unlock()
	proc, err := l.boot(name, pre)
	l.mu.Lock()
	defer l.mu.Unlock()
	defer close(filled)
	l.filling = false
	if err != nil {
		return
	}
	if l.closed {
		l.discard(name)
		return
	}
	l.warm, l.warmProc = name, proc
}

// boot starts a waiting shim and returns once it listens.
func (l *Launcher) boot(name string, preboot bool) (*os.Process, error) {
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	args := []string{"berth-shim", shimArg, "--warm", l.dir, name, strconv.Itoa(os.Getpid())}
	if preboot {
		args = append(args, prebootArg)
	}
	cmd := &exec.Cmd{
		Path:        l.exe,
		Args:        args,
		Dir:         "/",
		Env:         []string{"PATH=" + os.Getenv("PATH")},
		ExtraFiles:  []*os.File{wr},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		wr.Close()
		return nil, err
	}
	wr.Close()
	proc := cmd.Process
	go cmd.Wait()
	msg, _ := io.ReadAll(rd)
	if len(msg) > 0 {
		return nil, errors.New(string(msg))
	}
	return proc, nil
}

// discard ends a waiting shim: it exits when its connection carries nothing.
func (l *Launcher) discard(name string) {
	if conn, err := dialNamed(context.Background(), l.dir, name); err == nil {
		conn.Close()
	}
}

// Close stops the waiting shim (it has no container).
func (l *Launcher) Close() {
	l.mu.Lock()
	l.closed = true
	name := l.warm
	l.warm = ""
	l.mu.Unlock()
	if name != "" {
		l.discard(name)
	}
}
