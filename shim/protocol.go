package shim

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Files in the state directory.
const (
	socketName = "shim.sock"
	configName = "shim.json"
	exitName   = "exit.json"
	pidName    = "shim.pid"
	logName    = "shim.log"
)

// The protocol: each call is one connection to the shim's unix socket
// carrying one JSON request line and one JSON response line. An attach
// keeps its connection after the response for frames in both directions
// (frameHeader bytes, then the payload): stdout/stderr from the shim, stdin
// from the client, an empty stdin frame for the end of the client's stdin.
// The shim closes an attach connection once the output has ended.
type request struct {
	Op     string `json:"op"` // pid, start, wait, signal, resize, attach, exec, shutdown
	Signal int    `json:"signal,omitempty"`
	Height uint16 `json:"h,omitempty"`
	Width  uint16 `json:"w,omitempty"`
	// Attach: the streams the client wants.
	Stdin  bool `json:"stdin,omitempty"`
	Stdout bool `json:"stdout,omitempty"`
	Stderr bool `json:"stderr,omitempty"`
	// Exec: the process to run in the container, and its id (also for a
	// resize of the exec's terminal).
	ExecID  string         `json:"execID,omitempty"`
	Process *specs.Process `json:"process,omitempty"`
}

type response struct {
	Error  string      `json:"error,omitempty"`
	Pid    int         `json:"pid,omitempty"`
	Status *ExitStatus `json:"status,omitempty"`
}

// Stream ids of attach frames.
const (
	streamStdin  byte = 0
	streamStdout byte = 1
	streamStderr byte = 2
	// streamExit ends an exec connection: its payload is the exec's
	// ExitStatus as JSON.
	streamExit byte = 3
)

const (
	frameHeader = 5 // stream id, then the payload length (uint32, big endian)
	maxFrame    = 1 << 20
)

// writeFrame writes one frame; an empty p is an end-of-stream marker.
func writeFrame(w io.Writer, stream byte, p []byte) error {
	buf := make([]byte, frameHeader+len(p))
	buf[0] = stream
	binary.BigEndian.PutUint32(buf[1:frameHeader], uint32(len(p)))
	copy(buf[frameHeader:], p)
	_, err := w.Write(buf)
	return err
}

// frameWriter turns each Write into one frame of its stream.
type frameWriter struct {
	w      io.Writer
	stream byte
}

func (f frameWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		n := min(len(p), maxFrame)
		if err := writeFrame(f.w, f.stream, p[:n]); err != nil {
			return 0, err
		}
		p = p[n:]
	}
	return total, nil
}

// readFrames calls fn for each frame until the reader ends or fn fails.
func readFrames(r io.Reader, fn func(stream byte, p []byte) error) error {
	var hdr [frameHeader]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		if n > maxFrame {
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

// maxSocketPath is the room in sockaddr_un.sun_path, NUL included.
const maxSocketPath = 108

// socketAddr returns an address for the socket in dir. Paths too long for
// a sockaddr_un go through /proc/self/fd of an O_PATH descriptor of dir,
// which release closes once the socket is bound or connected.
func socketAddr(dir string) (addr string, release func(), err error) {
	return socketAddrNamed(dir, socketName)
}

// socketAddrNamed is socketAddr for the socket called name in dir.
func socketAddrNamed(dir, name string) (addr string, release func(), err error) {
	path := filepath.Join(dir, name)
	if len(path) < maxSocketPath {
		return path, func() {}, nil
	}
	d, err := os.OpenFile(dir, os.O_RDONLY|unix.O_PATH, 0)
	if err != nil {
		return "", nil, err
	}
	return "/proc/self/fd/" + strconv.Itoa(int(d.Fd())) + "/" + name, func() { d.Close() }, nil
}

// dialSocket connects to the shim's socket in dir.
func dialSocket(ctx context.Context, dir string) (net.Conn, error) {
	return dialNamed(ctx, dir, socketName)
}

// dialNamed connects to the socket called name in dir.
func dialNamed(ctx context.Context, dir, name string) (net.Conn, error) {
	addr, release, err := socketAddrNamed(dir, name)
	if err != nil {
		return nil, err
	}
	defer release()
	var d net.Dialer
	return d.DialContext(ctx, "unix", addr)
}
