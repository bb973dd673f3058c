// Package shim is the per-container monitor: a small process (the hidden
// "__shim" mode of the berth binary) that is the parent of the container,
// holds its stdio or pty, writes its json-file log, reaps it and keeps its
// exit status until the daemon collects it. The daemon talks to it through a
// unix socket in the container's state directory, so containers outlive the
// daemon and are found again when it restarts.
//
// The state directory holds shim.json (the Config), shim.sock (the
// control socket, removed at Shutdown), shim.pid, shim.log (the shim's own
// stderr) and exit.json (the exit status, written atomically before Wait
// answers and kept after the shim is gone, for ReadExitStatus). The
// protocol on the socket is described in protocol.go.
//
// The container never waits for an attached client: a client more than
// 4 MiB behind is detached; the json-file log always gets everything.
// Stdin follows Docker: the end of a client's stdin closes the container's
// stdin with StdinOnce (and no tty), else it ends that client's attach.
// Orphans reparented to the shim (its child subreaper) are reaped once the
// container has exited.
//
// CONTRACT (agreed with daemon/): the exported names and signatures in this
// file are what the daemon calls.
package shim

import (
	"io"
	"time"
)

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
