package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Client is the daemon's handle on one shim. Each call uses its own
// connection, so calls may run concurrently (a Wait beside a Signal).
type Client struct {
	stateDir string

	mu     sync.Mutex
	pid    int
	conns  map[net.Conn]struct{}
	closed bool
}

// Launch starts a shim for cfg, detached from the caller (its own session; it
// survives the daemon). The container process is not started until Start.
//
// The shim is this executable re-run as "__shim STATE_DIR", with its
// config in STATE_DIR/shim.json, stdin on /dev/null, stdout and stderr on
// STATE_DIR/shim.log, and fd 3 a pipe it closes once it listens (after
// writing an error message there if it could not start).
func Launch(ctx context.Context, cfg Config) (*Client, error) {
	return launchExe(ctx, cfg, "/proc/self/exe")
}

// launchExe launches exe (the berth binary) as the shim for cfg.
func launchExe(ctx context.Context, cfg Config, exe string) (*Client, error) {
	if cfg.StateDir == "" || cfg.ID == "" {
		return nil, errors.New("launch shim: ID and StateDir are required")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("launch shim: %w", err)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("launch shim: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.StateDir, configName), data, 0o600); err != nil {
		return nil, fmt.Errorf("launch shim: %w", err)
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("launch shim: %w", err)
	}
	defer rd.Close()
	logf, err := os.OpenFile(filepath.Join(cfg.StateDir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		wr.Close()
		return nil, fmt.Errorf("launch shim: %w", err)
	}
	defer logf.Close()
	cmd := &exec.Cmd{
		Path:       exe,
		Args:       []string{"berth-shim", shimArg, cfg.StateDir},
		Dir:        "/", // hold no mount of the daemon's busy
		Env:        []string{"PATH=" + os.Getenv("PATH")},
		Stdout:     logf,
		Stderr:     logf,
		ExtraFiles: []*os.File{wr},
		// A session of its own: no signal aimed at the daemon's process
		// group or terminal reaches it.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		wr.Close()
		return nil, fmt.Errorf("launch shim: %w", err)
	}
	wr.Close()
	// Reap the shim if it ends while we are its parent; after a daemon
	// restart, init does.
	go cmd.Wait()

	ready := make(chan []byte, 1)
	go func() {
		msg, _ := io.ReadAll(rd)
		ready <- msg
	}()
	select {
	case msg := <-ready:
		if len(msg) > 0 {
			return nil, fmt.Errorf("launch shim: %s", msg)
		}
	case <-ctx.Done():
		cmd.Process.Kill()
		return nil, fmt.Errorf("launch shim: %w", ctx.Err())
	}
	return Connect(ctx, cfg.StateDir)
}

// shimArg is argv[1] of the shim mode, dispatched by cmd/berth to Main.
const shimArg = "__shim"

// Connect finds a running shim again through its socket in stateDir.
func Connect(ctx context.Context, stateDir string) (*Client, error) {
	c := &Client{stateDir: stateDir, conns: map[net.Conn]struct{}{}}
	var res response
	if err := c.call(ctx, request{Op: "pid"}, &res); err != nil {
		return nil, err
	}
	c.pid = res.Pid
	return c, nil
}

// ReadExitStatus reads the exit status a shim recorded in stateDir, for a
// shim that is gone. ok is false when none was recorded.
func ReadExitStatus(stateDir string) (st ExitStatus, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(stateDir, exitName))
	if errors.Is(err, os.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("read exit status: %w", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, false, fmt.Errorf("read exit status %s: %w", stateDir, err)
	}
	return st, true, nil
}

// dial opens a connection that Close (or ctx) ends.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, net.ErrClosed
	}
	conn, err := dialSocket(ctx, c.stateDir)
	if err != nil {
		return nil, fmt.Errorf("shim %s: %w", c.stateDir, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		conn.Close()
		return nil, net.ErrClosed
	}
	c.conns[conn] = struct{}{}
	return conn, nil
}

func (c *Client) release(conn net.Conn) {
	conn.Close()
	c.mu.Lock()
	delete(c.conns, conn)
	c.mu.Unlock()
}

// roundTrip sends req on conn and reads the response line.
func roundTrip(ctx context.Context, conn net.Conn, br *bufio.Reader, req request) (response, error) {
	var res response
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	data, _ := json.Marshal(req)
	if _, err := conn.Write(append(data, '\n')); err != nil {
		return res, fmt.Errorf("shim %s: %w", req.Op, errOr(ctx, err))
	}
	line, err := br.ReadBytes('\n')
	if err != nil {
		return res, fmt.Errorf("shim %s: %w", req.Op, errOr(ctx, err))
	}
	if err := json.Unmarshal(line, &res); err != nil {
		return res, fmt.Errorf("shim %s: bad response: %w", req.Op, err)
	}
	if res.Error != "" {
		return res, errors.New(res.Error)
	}
	return res, nil
}

// errOr prefers the context's error to the I/O error it caused.
func errOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// call runs one request on its own connection.
func (c *Client) call(ctx context.Context, req request, res *response) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer c.release(conn)
	r, err := roundTrip(ctx, conn, bufio.NewReader(conn), req)
	*res = r
	return err
}

// Start creates and starts the container process; it returns its host pid,
// or the runtime's error (see runtime.Runtime.Start for the wording).
func (c *Client) Start(ctx context.Context) (pid int, err error) {
	var res response
	if err := c.call(ctx, request{Op: "start"}, &res); err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.pid = res.Pid
	c.mu.Unlock()
	return res.Pid, nil
}

// Pid is the container's host pid (0 before Start).
func (c *Client) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

// Attach connects a client's streams: output written from now on is copied
// to them, and Stdin (if any) is fed to the container's stdin. The returned
// channel yields once when the output streams end (container exit, or ctx
// cancelled); closing of Stdin by the client half-closes the container's
// stdin if StdinOnce.
//
// As in Docker, when Stdin ends and the container is not StdinOnce (or has
// a terminal), the container's stdin stays open and this attach ends
// instead. Output the client cannot take in time is not waited for: a
// client more than a bounded backlog behind is detached.
func (c *Client) Attach(ctx context.Context, s Streams) (<-chan error, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	req := request{Op: "attach", Stdin: s.Stdin != nil, Stdout: s.Stdout != nil, Stderr: s.Stderr != nil}
	if _, err := roundTrip(ctx, conn, br, req); err != nil {
		c.release(conn)
		return nil, err
	}
	done := make(chan error, 1)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	if s.Stdin != nil {
		go func() {
			// Whether stdin ended or failed, the shim learns it is over.
			io.Copy(frameWriter{w: conn, stream: streamStdin}, s.Stdin)
			writeFrame(conn, streamStdin, nil)
		}()
	}
	go func() {
		defer close(done)
		err := readFrames(br, func(stream byte, p []byte) error {
			var w io.Writer
			switch stream {
			case streamStdout:
				w = s.Stdout
			case streamStderr:
				w = s.Stderr
			}
			if w == nil || len(p) == 0 {
				return nil
			}
			_, err := w.Write(p)
			return err
		})
		stop()
		c.release(conn)
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			err = nil
		}
		done <- err
	}()
	return done, nil
}

// Wait blocks until the container exits (returns at once if it has).
func (c *Client) Wait(ctx context.Context) (ExitStatus, error) {
	var res response
	if err := c.call(ctx, request{Op: "wait"}, &res); err != nil {
		return ExitStatus{}, err
	}
	if res.Status == nil {
		return ExitStatus{}, errors.New("shim wait: no status in the answer")
	}
	return *res.Status, nil
}

// Signal sends sig to the container's init process. Once the process has
// exited, the error says "process already finished".
func (c *Client) Signal(ctx context.Context, sig syscall.Signal) error {
	var res response
	return c.call(ctx, request{Op: "signal", Signal: int(sig)}, &res)
}

// Resize sets the pty size of a Tty container (a size given before Start
// applies from the start; without a terminal it does nothing).
func (c *Client) Resize(ctx context.Context, height, width uint16) error {
	var res response
	return c.call(ctx, request{Op: "resize", Height: height, Width: width}, &res)
}

// Shutdown tells the shim to release the runtime's resources and exit. Call
// it after Wait has returned and the exit status is recorded by the daemon.
// The shim refuses while the container runs; a shim already gone is not an
// error. The exit status file stays.
func (c *Client) Shutdown(ctx context.Context) error {
	var res response
	err := c.call(ctx, request{Op: "shutdown"}, &res)
	if err != nil && goneErr(err) {
		return nil
	}
	return err
}

// goneErr reports an error of talking to a shim that has exited.
func goneErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, os.ErrNotExist) ||
		strings.Contains(err.Error(), "use of closed network connection")
}

// Close drops the daemon's connection; the shim keeps running.
// Later calls fail with an error wrapping net.ErrClosed. Calls and attaches
// already in flight are left to finish (a Wait still answers at the exit):
// the daemon's monitor reads a Wait error as the shim's death, so Close
// must not cause one.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}
