// Package stream holds the byte-level framings of Docker's streaming
// endpoints: stdcopy multiplexing (non-TTY attach, logs, exec) and the
// detach-key escape of an interactive stdin.
package stream

import (
	"encoding/binary"
	"io"
	"sync"
)

// StdType is the stream id in a stdcopy frame header.
type StdType byte

// Stream ids, as in Docker's stdcopy.
const (
	Stdin     StdType = 0
	Stdout    StdType = 1
	Stderr    StdType = 2
	Systemerr StdType = 3
)

// headerLen is the size of a frame header: stream id, three zero bytes,
// big-endian uint32 payload length.
const headerLen = 8

// maxFrame bounds one frame's payload so a huge write becomes several frames.
const maxFrame = 1 << 20

// Mux writes stdcopy frames to one underlying writer. Writers from several
// goroutines (stdout and stderr pumps) never interleave inside a frame.
type Mux struct {
	mu sync.Mutex
	w  io.Writer
}

// NewMux frames writes onto w.
func NewMux(w io.Writer) *Mux { return &Mux{w: w} }

// Writer returns the writer for stream t; each Write becomes one or more frames.
func (m *Mux) Writer(t StdType) io.Writer { return &framer{m: m, t: t} }

// WriteFrame writes p as frames of stream t.
func (m *Mux) WriteFrame(t StdType, p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxFrame)
		buf := make([]byte, headerLen+n)
		buf[0] = byte(t)
		binary.BigEndian.PutUint32(buf[4:], uint32(n))
		copy(buf[headerLen:], p[:n])
		if _, err := m.w.Write(buf); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

type framer struct {
	m *Mux
	t StdType
}

func (f *framer) Write(p []byte) (int, error) { return f.m.WriteFrame(f.t, p) }
