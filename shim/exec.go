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
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/runtime"
)

// ExecConfig is a process to start in the running container.
type ExecConfig struct {
	ID      string // the daemon's exec id, for ResizeExec
	Process *specs.Process
}

// ExecExit is how an exec ended. Err is set when the shim could not tell
// (it went away before the process ended).
type ExecExit struct {
	Status ExitStatus
	Err    error
}

// Exec starts cfg.Process in the container and connects s to its stdio
// (a terminal when Process.Terminal: then Stdout gets everything). The
// returned channel yields once, when the process has exited and its
// output has been delivered. The exec's output does not go to the
// container's log. A client that stops reading (a nil or failing writer)
// does not stop the process: the exit status is still reported.
func (c *Client) Exec(ctx context.Context, cfg ExecConfig, s Streams) (pid int, done <-chan ExecExit, err error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return 0, nil, err
	}
	br := bufio.NewReader(conn)
	req := request{Op: "exec", ExecID: cfg.ID, Process: cfg.Process, Stdin: s.Stdin != nil, Stdout: s.Stdout != nil, Stderr: s.Stderr != nil}
	res, err := roundTrip(ctx, conn, br, req)
	if err != nil {
		c.release(conn)
		return 0, nil, err
	}
	if s.Stdin != nil {
		go func() {
			io.Copy(frameWriter{w: conn, stream: streamStdin}, s.Stdin)
			writeFrame(conn, streamStdin, nil)
		}()
	}
	ch := make(chan ExecExit, 1)
	go func() {
		defer c.release(conn)
		out := map[byte]io.Writer{streamStdout: s.Stdout, streamStderr: s.Stderr}
		var exit *ExecExit
		err := readFrames(br, func(stream byte, p []byte) error {
			if stream == streamExit {
				var st ExitStatus
				if err := json.Unmarshal(p, &st); err != nil {
					return fmt.Errorf("shim exec: bad exit status: %w", err)
				}
				exit = &ExecExit{Status: st}
				return io.EOF
			}
			if w := out[stream]; w != nil && len(p) > 0 {
				if _, err := w.Write(p); err != nil {
					out[stream] = nil // the client is gone; the exec goes on
				}
			}
			return nil
		})
		if exit == nil {
			if err == nil || errors.Is(err, io.EOF) {
				err = errors.New("shim exec: connection ended before the exit status")
			}
			exit = &ExecExit{Status: ExitStatus{Code: 255, ExitedAt: time.Now()}, Err: err}
		}
		ch <- *exit
	}()
	return res.Pid, ch, nil
}

// ResizeExec sets the terminal size of a running exec.
func (c *Client) ResizeExec(ctx context.Context, execID string, height, width uint16) error {
	var res response
	return c.call(ctx, request{Op: "resize", ExecID: execID, Height: height, Width: width}, &res)
}

// connWriter serialises frame writes on an exec connection; once a write
// fails it drops the rest, so that the process's output is still drained.
type connWriter struct {
	mu   sync.Mutex
	conn net.Conn
	dead bool
}

func (w *connWriter) frame(stream byte, p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dead {
		return
	}
	if err := writeFrame(w.conn, stream, p); err != nil {
		w.dead = true
	}
}

func (w *connWriter) stream(stream byte) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		total := len(p)
		for len(p) > 0 {
			n := min(len(p), maxFrame)
			w.frame(stream, p[:n])
			p = p[n:]
		}
		return total, nil
	})
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// exec serves an exec connection: it starts the process, answers its pid,
// then carries its output and stdin as frames, and ends with its exit
// status (streamExit).
func (s *server) exec(conn net.Conn, br *bufio.Reader, req request) {
	defer conn.Close()
	proc, stdin, outputs, err := s.startExec(req)
	if err != nil {
		reply(conn, response{Error: err.Error()})
		return
	}
	if err := reply(conn, response{Pid: proc.Pid()}); err != nil {
		s.log.Debug("exec client gone", "exec", req.ExecID)
	}
	w := &connWriter{conn: conn}
	var copiers sync.WaitGroup
	for stream, r := range outputs {
		copiers.Add(1)
		go func() {
			defer copiers.Done()
			io.Copy(w.stream(stream), r)
		}()
	}
	tty := req.Process.Terminal
	go func() {
		stdinOver := stdin == nil
		readFrames(br, func(stream byte, p []byte) error {
			if stream != streamStdin || stdinOver {
				return nil
			}
			if len(p) == 0 {
				stdinOver = true
				if !tty {
					stdin.Close()
				}
				return nil
			}
			stdin.Write(p)
			return nil
		})
		// The client hung up: the process's stdin (a pipe) is over too.
		if !stdinOver && !tty {
			stdin.Close()
		}
	}()
	st, werr := proc.Wait()
	if werr != nil {
		s.log.Warn("wait for exec", "exec", req.ExecID, "err", werr)
		st = runtime.ExitStatus{Code: 255, ExitedAt: time.Now()}
	}
	drained := make(chan struct{})
	go func() { copiers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
	}
	s.mu.Lock()
	delete(s.execs, req.ExecID)
	s.mu.Unlock()
	for _, r := range outputs {
		r.Close()
	}
	if !tty && stdin != nil {
		stdin.Close()
	}
	data, _ := json.Marshal(ExitStatus{Code: st.Code, ExitedAt: st.ExitedAt.UTC()})
	w.frame(streamExit, data)
}

// startExec starts the exec's process with pipes, or with a terminal.
func (s *server) startExec(req request) (runtime.Process, io.WriteCloser, map[byte]*os.File, error) {
	if req.Process == nil || len(req.Process.Args) == 0 {
		return nil, nil, nil, errdefs.InvalidParameterf("exec: no command")
	}
	s.mu.Lock()
	rt, p := s.rt, s.proc
	running := p != nil && !isClosed(s.exited)
	s.mu.Unlock()
	if !running {
		return nil, nil, nil, errdefs.Conflictf("container %s is not running", s.cfg.ID)
	}
	ex, ok := rt.(runtime.Execer)
	if !ok {
		return nil, nil, nil, errdefs.NotImplemented(fmt.Errorf("runtime %q cannot exec", s.cfg.Runtime))
	}
	var stdio runtime.IO
	var theirs []*os.File
	outputs := map[byte]*os.File{}
	var inW *os.File
	closeAll := func() {
		for _, f := range theirs {
			f.Close()
		}
	}
	if !req.Process.Terminal {
		outR, outW, err := os.Pipe()
		if err != nil {
			return nil, nil, nil, err
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			outR.Close()
			outW.Close()
			return nil, nil, nil, err
		}
		outputs[streamStdout], outputs[streamStderr] = outR, errR
		theirs = append(theirs, outW, errW)
		stdio.Stdout, stdio.Stderr = outW, errW
		if req.Stdin {
			inR, w, err := os.Pipe()
			if err != nil {
				closeAll()
				outR.Close()
				errR.Close()
				return nil, nil, nil, err
			}
			inW = w
			theirs = append(theirs, inR)
			stdio.Stdin = inR
		}
	}
	proc, err := ex.Exec(context.Background(), s.cfg.ID, s.cfg.BundleDir, req.Process, stdio)
	closeAll()
	if err != nil {
		for _, f := range outputs {
			f.Close()
		}
		if inW != nil {
			inW.Close()
		}
		return nil, nil, nil, err
	}
	if req.Process.Terminal {
		con := proc.Console()
		outputs[streamStdout] = con
		s.mu.Lock()
		if s.execs == nil {
			s.execs = map[string]*os.File{}
		}
		if req.ExecID != "" {
			s.execs[req.ExecID] = con
		}
		s.mu.Unlock()
		if req.Stdin {
			return proc, con, outputs, nil
		}
		return proc, nil, outputs, nil
	}
	if inW == nil {
		return proc, nil, outputs, nil
	}
	return proc, inW, outputs, nil
}

// resizeExec sets the terminal size of a running exec.
func (s *server) resizeExec(id string, height, width uint16) error {
	s.mu.Lock()
	con := s.execs[id]
	s.mu.Unlock()
	if con == nil {
		return errdefs.NotFoundf("exec %s has no terminal or is not running", id)
	}
	return setWinsize(con, &unix.Winsize{Row: height, Col: width})
}
