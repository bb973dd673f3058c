// Package shim is the per-container monitor: a small process (the hidden
// "__shim" mode of the berth binary) that is the parent of the container,
// holds its stdio or pty, writes its json-file log, reaps it and keeps its
// exit status until the daemon collects it. The daemon talks to it through a
// unix socket in the container's state directory, so containers outlive the
// daemon and are found again when it restarts.
//
// CONTRACT (agreed with daemon/): the exported names and signatures in this
// file are what the daemon calls.
package shim

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"
)

var errTODO = errors.New("shim: not implemented yet")

// Config describes the container a shim is launched for.
type Config struct {
	ID              string
	BundleDir       string // holds config.json; its root.path is already mounted
	StateDir        string // the shim's socket, pid file and exit status live here (on tmpfs under the exec root)
	LogPath         string // json-file log path; "" means no log (--log-driver none)
	LogMaxSize      int64  // rotate when the log exceeds this many bytes; 0 = default bound
	LogMaxFiles     int    // number of rotated files kept; 0 = default
	Runtime         string // "" for the built-in runtime, else an OCI runtime binary (runc)
	RuntimeStateDir string // state dir handed to the runtime
	CgroupParent    string
	Tty             bool
	OpenStdin       bool
	StdinOnce       bool // close the container's stdin when the first attached client's stdin ends
}

// ExitStatus is how the container ended.
type ExitStatus struct {
	Code      int
	OOMKilled bool
	ExitedAt  time.Time
}

// Streams are one attached client's streams. For a Tty container, stdout and
// stderr are merged into Stdout. Nil streams are not attached.
type Streams struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Client is the daemon's handle on one shim.
type Client struct{}

// Launch starts a shim for cfg, detached from the caller (its own session; it
// survives the daemon). The container process is not started until Start.
func Launch(ctx context.Context, cfg Config) (*Client, error) { return nil, errTODO }

// Connect finds a running shim again through its socket in stateDir.
func Connect(ctx context.Context, stateDir string) (*Client, error) { return nil, errTODO }

// ReadExitStatus reads the exit status a shim recorded in stateDir, for a
// shim that is gone. ok is false when none was recorded.
func ReadExitStatus(stateDir string) (st ExitStatus, ok bool, err error) {
	return ExitStatus{}, false, errTODO
}

// Start creates and starts the container process; it returns its host pid,
// or the runtime's error (see runtime.Runtime.Start for the wording).
func (c *Client) Start(ctx context.Context) (pid int, err error) { return 0, errTODO }

// Pid is the container's host pid (0 before Start).
func (c *Client) Pid() int { return 0 }

// Attach connects a client's streams: output written from now on is copied
// to them, and Stdin (if any) is fed to the container's stdin. The returned
// channel yields once when the output streams end (container exit, or ctx
// cancelled); closing of Stdin by the client half-closes the container's
// stdin if StdinOnce.
func (c *Client) Attach(ctx context.Context, s Streams) (<-chan error, error) { return nil, errTODO }

// Wait blocks until the container exits (returns at once if it has).
func (c *Client) Wait(ctx context.Context) (ExitStatus, error) { return ExitStatus{}, errTODO }

// Signal sends sig to the container's init process.
func (c *Client) Signal(ctx context.Context, sig syscall.Signal) error { return errTODO }

// Resize sets the pty size of a Tty container.
func (c *Client) Resize(ctx context.Context, height, width uint16) error { return errTODO }

// Shutdown tells the shim to release the runtime's resources and exit. Call
// it after Wait has returned and the exit status is recorded by the daemon.
func (c *Client) Shutdown(ctx context.Context) error { return errTODO }

// Close drops the daemon's connection; the shim keeps running.
func (c *Client) Close() error { return nil }

// Main is the entry point of the hidden "__shim" mode; it returns the exit code.
func Main(args []string) int { return 1 }
