package shim

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	socketName = "shim.sock"
	configName = "shim.json"
	exitName   = "exit.json"
	logName    = "shim.log"
)

// request is one control message from the daemon; the shim answers with
// one response line (Attach then keeps the connection for the streams).
type request struct {
	Op     string `json:"op"` // start, pid, wait, signal, resize, attach, shutdown
	Signal int    `json:"signal,omitempty"`
	Height uint16 `json:"h,omitempty"`
	Width  uint16 `json:"w,omitempty"`
	// Attach: which streams the client wants.
	Stdin  bool `json:"stdin,omitempty"`
	Stdout bool `json:"stdout,omitempty"`
	Stderr bool `json:"stderr,omitempty"`
}

type response struct {
	Error  string      `json:"error,omitempty"`
	Pid    int         `json:"pid,omitempty"`
	Status *ExitStatus `json:"status,omitempty"`
}

// Client is the daemon's handle on one shim.
type Client struct {
	stateDir string
	pid      int
}

// Launch starts a shim for cfg, detached from the caller (its own session; it
// survives the daemon). The container process is not started until Start.
func Launch(ctx context.Context, cfg Config) (*Client, error) {
	if err := writeConfig(cfg); err != nil {
		return nil, err
	}
	if err := startShim(filepath.Join(cfg.StateDir, logName), cfg.StateDir); err != nil {
		return nil, fmt.Errorf("launch shim: %w", err)
	}
	return Connect(ctx, cfg.StateDir)
}

func writeConfig(cfg Config) error {
	data, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("launch shim: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.StateDir, configName), data, 0o600); err != nil {
		return fmt.Errorf("launch shim: %w", err)
	}
	return nil
}

// startShim runs `berth __shim args...` in its own session and waits until
// it listens (it closes the ready pipe; an error message comes through it).
func startShim(logPath string, args ...string) error {
	rd, wr, err := os.Pipe()
	if err != nil {
		return err
	}
	defer rd.Close()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		wr.Close()
		return err
	}
	defer logf.Close()
	cmd := exec.Command("/proc/self/exe", append([]string{"__shim"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{wr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GOGC=50"}
	if err := cmd.Start(); err != nil {
		wr.Close()
		return err
	}
	wr.Close()
	// Reap the shim if it exits while we are its parent; after a daemon
	// restart init (or a subreaper) does.
	go cmd.Wait()
	msg, _ := io.ReadAll(rd)
	if len(msg) > 0 {
		return errors.New(string(msg))
	}
	return nil
}

// Launcher launches shims, keeping one booted in advance (after the first
// launch) so that a container start does not wait for a process to start.
type Launcher struct {
	dir     string
	mu      sync.Mutex
	warm    string // socket name of the booted shim in dir, "" if none
	filling bool
	closed  bool
	n       int
	// disabled turns prebooting off (BERTH_NO_WARM_SHIM=1), for comparisons.
	disabled bool
}

// NewLauncher keeps its waiting shims' sockets in dir.
func NewLauncher(dir string) (*Launcher, error) {
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("shim launcher: %w", err)
	}
	return &Launcher{dir: dir, disabled: os.Getenv("BERTH_NO_WARM_SHIM") == "1"}, nil
}

// Launch is like the Launch function, using a waiting shim when one is ready.
func (l *Launcher) Launch(ctx context.Context, cfg Config) (*Client, error) {
	if l.disabled {
		return Launch(ctx, cfg)
	}
	l.mu.Lock()
	name := l.warm
	l.warm = ""
	l.mu.Unlock()
	// Boot the next one once this start is done: on a small machine a
	// boot in parallel would slow this one down.
	time.AfterFunc(200*time.Millisecond, l.refill)
	if name != "" {
		if err := writeConfig(cfg); err != nil {
			return nil, err
		}
		if err := l.configure(ctx, name, cfg.StateDir); err == nil {
			return Connect(ctx, cfg.StateDir)
		}
	}
	return Launch(ctx, cfg)
}

// configure hands a waiting shim its container's state dir.
func (l *Launcher) configure(ctx context.Context, name, stateDir string) error {
	conn, err := dialUnix(ctx, l.dir, name)
	if err != nil {
		return err
	}
	defer conn.Close()
	data, _ := json.Marshal(struct {
		StateDir string `json:"stateDir"`
	}{stateDir})
	if _, err := conn.Write(append(data, '\n')); err != nil {
		return err
	}
	var res response
	if err := json.NewDecoder(conn).Decode(&res); err != nil {
		return err
	}
	if res.Error != "" {
		return errors.New(res.Error)
	}
	return nil
}

func (l *Launcher) refill() {
	l.mu.Lock()
	if l.closed || l.warm != "" || l.filling {
		l.mu.Unlock()
		return
	}
	l.filling = true
	l.n++
	name := fmt.Sprintf("w%d.sock", l.n)
	l.mu.Unlock()
	err := startShim(os.DevNull, "--warm", l.dir, name)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.filling = false
	if err == nil && !l.closed {
		l.warm = name
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
		if conn, err := dialUnix(context.Background(), l.dir, name); err == nil {
			conn.Close() // it exits when its one connection carries nothing
		}
	}
}

// Connect finds a running shim again through its socket in stateDir.
func Connect(ctx context.Context, stateDir string) (*Client, error) {
	c := &Client{stateDir: stateDir}
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
		return st, false, fmt.Errorf("read exit status: %w", err)
	}
	return st, true, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	return dialUnix(ctx, c.stateDir, socketName)
}

// dialUnix connects to the socket name in dir, through a descriptor of dir
// when the path is longer than socket addresses allow (108 bytes).
func dialUnix(ctx context.Context, dir, name string) (net.Conn, error) {
	var d net.Dialer
	path := filepath.Join(dir, name)
	if len(path) >= 100 {
		f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return nil, fmt.Errorf("shim %s: %w", dir, err)
		}
		defer f.Close()
		path = fmt.Sprintf("/proc/self/fd/%d/%s", f.Fd(), name)
	}
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("shim %s: %w", dir, err)
	}
	return conn, nil
}

// call sends one request on a new connection and reads its response.
func (c *Client) call(ctx context.Context, req request, res *response) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return fmt.Errorf("shim %s: %w", req.Op, err)
	}
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(res); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("shim %s: %w", req.Op, err)
	}
	if res.Error != "" {
		return errors.New(res.Error)
	}
	return nil
}

// Start creates and starts the container process; it returns its host pid,
// or the runtime's error (see runtime.Runtime.Start for the wording).
func (c *Client) Start(ctx context.Context) (pid int, err error) {
	var res response
	if err := c.call(ctx, request{Op: "start"}, &res); err != nil {
		return 0, err
	}
	c.pid = res.Pid
	return res.Pid, nil
}

// Pid is the container's host pid (0 before Start).
func (c *Client) Pid() int { return c.pid }

// Attach connects a client's streams: output written from now on is copied
// to them, and Stdin (if any) is fed to the container's stdin. The returned
// channel yields once when the output streams end (container exit, or ctx
// cancelled); closing of Stdin by the client half-closes the container's
// stdin if StdinOnce.
func (c *Client) Attach(ctx context.Context, s Streams) (<-chan error, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	req := request{Op: "attach", Stdin: s.Stdin != nil, Stdout: s.Stdout != nil, Stderr: s.Stderr != nil}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		conn.Close()
		return nil, fmt.Errorf("shim attach: %w", err)
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("shim attach: %w", err)
	}
	var res response
	if err := json.Unmarshal(line, &res); err != nil || res.Error != "" {
		conn.Close()
		return nil, fmt.Errorf("shim attach: %s%v", res.Error, err)
	}
	done := make(chan error, 1)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	if s.Stdin != nil {
		go func() {
			w := &frameWriter{w: conn, stream: streamStdin}
			io.Copy(w, s.Stdin)
			w.writeFrame(nil) // end of stdin
		}()
	}
	go func() {
		defer stop()
		defer conn.Close()
		err := readFrames(br, func(stream byte, p []byte) error {
			var w io.Writer
			switch stream {
			case streamStdout:
				w = s.Stdout
			case streamStderr:
				w = s.Stderr
			}
			if w != nil && len(p) > 0 {
				_, err := w.Write(p)
				return err
			}
			return nil
		})
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
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
		return ExitStatus{}, errors.New("shim wait: no status")
	}
	return *res.Status, nil
}

// Signal sends sig to the container's init process.
func (c *Client) Signal(ctx context.Context, sig syscall.Signal) error {
	var res response
	return c.call(ctx, request{Op: "signal", Signal: int(sig)}, &res)
}

// Resize sets the pty size of a Tty container.
func (c *Client) Resize(ctx context.Context, height, width uint16) error {
	var res response
	return c.call(ctx, request{Op: "resize", Height: height, Width: width}, &res)
}

// Shutdown tells the shim to release the runtime's resources and exit. Call
// it after Wait has returned and the exit status is recorded by the daemon.
func (c *Client) Shutdown(ctx context.Context) error {
	var res response
	err := c.call(ctx, request{Op: "shutdown"}, &res)
	if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist)) {
		return nil // already gone
	}
	return err
}

// Close drops the daemon's connection; the shim keeps running.
func (c *Client) Close() error { return nil }

// Stream ids of the frames between client and shim.
const (
	streamStdin  byte = 0
	streamStdout byte = 1
	streamStderr byte = 2
)

// frameWriter writes one frame per Write: stream id, 4-byte big-endian
// length, payload. An empty frame means end of stream.
type frameWriter struct {
	w      io.Writer
	stream byte
}

func (f *frameWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := f.writeFrame(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (f *frameWriter) writeFrame(p []byte) error {
	buf := make([]byte, 5+len(p))
	buf[0] = f.stream
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(p)))
	copy(buf[5:], p)
	_, err := f.w.Write(buf)
	return err
}

// readFrames calls fn for each frame until the reader ends.
func readFrames(r io.Reader, fn func(stream byte, p []byte) error) error {
	var hdr [5]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		if n > 1<<20 {
			return fmt.Errorf("shim: frame of %d bytes", n)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			return err
		}
		if err := fn(hdr[0], p); err != nil {
			return err
		}
	}
}
