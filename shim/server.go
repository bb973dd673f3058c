package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/logs/jsonfile"
	"github.com/berth-dev/berth/runtime"
	"golang.org/x/sys/unix"
)

// drainTimeout bounds how long output is drained after the container's
// init exits (processes outside its pid namespace may hold the pipes).
const drainTimeout = 2 * time.Second

// Main is the entry point of the hidden "__shim" mode; it returns the exit code.
// args: the state directory, or "--warm POOL_DIR NAME" for a shim started
// in advance that waits in POOL_DIR for the state directory of the
// container it will serve. fd 3 is the ready pipe: closed once the socket
// listens, or carrying an error message.
func Main(args []string) int {
	readyPipe := os.NewFile(3, "ready")
	pipeReady := func(err error) {
		if err != nil {
			io.WriteString(readyPipe, err.Error())
		}
		readyPipe.Close()
	}
	if len(args) == 3 && args[0] == "--warm" {
		return warmMain(args[1], args[2], pipeReady)
	}
	if len(args) != 1 {
		pipeReady(errors.New("usage: __shim STATE_DIR"))
		return 2
	}
	return serve(args[0], pipeReady)
}

// warmMain waits, booted, until the daemon hands it a container.
func warmMain(poolDir, name string, pipeReady func(error)) int {
	// A warm shim dies with the daemon that started it; a configured one
	// outlives it.
	unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0)
	if err := os.Chdir(poolDir); err != nil {
		pipeReady(err)
		return 1
	}
	os.Remove(name)
	l, err := net.Listen("unix", name)
	if err != nil {
		pipeReady(err)
		return 1
	}
	pipeReady(nil)
	conn, err := l.Accept()
	l.Close()
	os.Remove(name)
	if err != nil {
		return 1
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	var req struct {
		StateDir string `json:"stateDir"`
	}
	if err != nil || json.Unmarshal(line, &req) != nil || req.StateDir == "" {
		conn.Close()
		return 1
	}
	unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0)
	if f, err := os.OpenFile(filepath.Join(req.StateDir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		unix.Dup2(int(f.Fd()), 1)
		unix.Dup2(int(f.Fd()), 2)
		f.Close()
	}
	return serve(req.StateDir, func(err error) {
		var res response
		if err != nil {
			res.Error = err.Error()
		}
		data, _ := json.Marshal(res)
		conn.Write(append(data, '\n'))
		conn.Close()
	})
}

// serve runs the shim for the container whose state dir is stateDir;
// ready reports that its socket listens (or why it cannot).
func serve(stateDir string, ready func(error)) int {
	fail := func(err error) int {
		if ready != nil {
			ready(err)
		}
		fmt.Fprintln(os.Stderr, "shim:", err)
		return 1
	}
	data, err := os.ReadFile(filepath.Join(stateDir, configName))
	if err != nil {
		return fail(err)
	}
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fail(err)
	}
	// Orphans of the container are reparented to us, so we reap them.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGINT, syscall.SIGTERM)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("container", cfg.ID)

	// Bind relative to the state dir: its absolute path can exceed the
	// 108-byte limit of socket addresses.
	if err := os.Chdir(stateDir); err != nil {
		return fail(err)
	}
	sock := socketName
	os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fail(err)
	}
	s := &server{cfg: cfg, log: log, exited: make(chan struct{}), started: make(chan struct{}), done: make(chan struct{}), subs: map[*subscriber]bool{}}
	if cfg.LogPath != "" {
		w, err := jsonfile.NewWriter(cfg.LogPath, cfg.LogMaxSize, cfg.LogMaxFiles)
		if err != nil {
			l.Close()
			return fail(err)
		}
		s.logw = w
	}
	ready(nil)
	ready = nil
	go func() {
		<-s.done
		l.Close()
	}()
	for {
		conn, err := l.Accept()
		if err != nil {
			break
		}
		go s.handle(conn)
	}
	os.Remove(sock)
	if s.logw != nil {
		s.logw.Close()
	}
	return 0
}

type server struct {
	cfg  Config
	log  *slog.Logger
	logw *jsonfile.Writer

	mu        sync.Mutex
	rt        runtime.Runtime
	proc      runtime.Process
	stdin     io.WriteCloser // container stdin (pipe or pty master), nil when closed
	console   *os.File
	status    ExitStatus
	exited    chan struct{}
	started   chan struct{} // closed after the first start attempt
	startOnce sync.Once
	done      chan struct{}
	doneOnce  sync.Once
	subs      map[*subscriber]bool
	// stdinUsed is set once a client's stdin ended under StdinOnce.
	stdinUsed bool
}

// subscriber is one attached client's output queue.
type subscriber struct {
	conn           net.Conn
	stdout, stderr bool
	ch             chan frame
	closeOnce      sync.Once
}

type frame struct {
	stream byte
	data   []byte
}

func (sub *subscriber) close() { sub.closeOnce.Do(func() { close(sub.ch) }) }

func (s *server) handle(conn net.Conn) {
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		conn.Close()
		return
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		s.reply(conn, response{Error: "bad request: " + err.Error()})
		conn.Close()
		return
	}
	if req.Op == "attach" {
		s.attach(conn, br, req)
		return
	}
	defer conn.Close()
	var res response
	switch req.Op {
	case "pid":
		s.mu.Lock()
		if s.proc != nil {
			res.Pid = s.proc.Pid()
		}
		s.mu.Unlock()
	case "start":
		pid, err := s.start()
		s.startOnce.Do(func() { close(s.started) })
		if err != nil {
			res.Error = err.Error()
		}
		res.Pid = pid
	case "wait":
		// Answer when the container exits, or give up if the client goes.
		gone := make(chan struct{})
		go func() { io.Copy(io.Discard, br); close(gone) }()
		select {
		case <-s.exited:
			st := s.status
			res.Status = &st
		case <-gone:
			return
		}
	case "signal":
		s.mu.Lock()
		p := s.proc
		s.mu.Unlock()
		select {
		case <-s.exited:
			res.Error = "container is not running"
		default:
			if p == nil {
				res.Error = "container is not running"
			} else if err := p.Signal(syscall.Signal(req.Signal)); err != nil {
				res.Error = err.Error()
			}
		}
	case "resize":
		s.mu.Lock()
		con := s.console
		s.mu.Unlock()
		if con == nil {
			res.Error = "container has no terminal"
		} else if err := unix.IoctlSetWinsize(int(con.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: req.Height, Col: req.Width}); err != nil {
			res.Error = err.Error()
		}
	case "shutdown":
		s.mu.Lock()
		rt := s.rt
		s.mu.Unlock()
		if rt != nil {
			if err := rt.Delete(context.Background(), s.cfg.ID); err != nil {
				s.log.Warn("runtime delete", "err", err)
			}
		}
		s.reply(conn, res)
		s.doneOnce.Do(func() { close(s.done) })
		return
	default:
		res.Error = "unknown op " + req.Op
	}
	s.reply(conn, res)
}

func (s *server) reply(conn net.Conn, res response) {
	data, _ := json.Marshal(res)
	conn.Write(append(data, '\n'))
}

// start creates the container process with pipes or a pty for its stdio.
func (s *server) start() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return s.proc.Pid(), nil
	}
	rt, err := runtime.New(runtime.Options{Name: s.cfg.Runtime, StateDir: s.cfg.RuntimeStateDir, CgroupParent: s.cfg.CgroupParent})
	if err != nil {
		return 0, err
	}
	s.rt = rt
	var stdio runtime.IO
	var outR, errR, inW *os.File
	var childEnds []*os.File
	if !s.cfg.Tty {
		var outW, errW *os.File
		if outR, outW, err = os.Pipe(); err != nil {
			return 0, err
		}
		if errR, errW, err = os.Pipe(); err != nil {
			return 0, err
		}
		stdio.Stdout, stdio.Stderr = outW, errW
		childEnds = append(childEnds, outW, errW)
		if s.cfg.OpenStdin {
			var inR *os.File
			if inR, inW, err = os.Pipe(); err != nil {
				return 0, err
			}
			stdio.Stdin = inR
			childEnds = append(childEnds, inR)
		}
	}
	p, err := rt.Start(context.Background(), s.cfg.ID, s.cfg.BundleDir, stdio)
	for _, f := range childEnds {
		f.Close()
	}
	if err != nil {
		for _, f := range []*os.File{outR, errR, inW} {
			if f != nil {
				f.Close()
			}
		}
		return 0, err
	}
	s.proc = p
	var copiers sync.WaitGroup
	if s.cfg.Tty {
		s.console = p.Console()
		if s.console != nil {
			if s.cfg.OpenStdin {
				s.stdin = s.console
			}
			copiers.Add(1)
			go func() { defer copiers.Done(); s.copyOutput(streamStdout, s.console) }()
		}
	} else {
		if inW != nil {
			s.stdin = inW
		}
		copiers.Add(2)
		go func() { defer copiers.Done(); s.copyOutput(streamStdout, outR); outR.Close() }()
		go func() { defer copiers.Done(); s.copyOutput(streamStderr, errR); errR.Close() }()
	}
	go s.reap(p, &copiers)
	return p.Pid(), nil
}

// reap waits for the container, drains its output, records the status and
// ends the attached streams.
func (s *server) reap(p runtime.Process, copiers *sync.WaitGroup) {
	st, err := p.Wait()
	if err != nil {
		s.log.Error("wait", "err", err)
		st = runtime.ExitStatus{Code: 255, ExitedAt: time.Now()}
	}
	drained := make(chan struct{})
	go func() { copiers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
	}
	if s.logw != nil {
		s.logw.Flush()
	}
	if st.ExitedAt.IsZero() {
		st.ExitedAt = time.Now()
	}
	status := ExitStatus{Code: st.Code, OOMKilled: st.OOMKilled, ExitedAt: st.ExitedAt.UTC()}
	if err := writeExitStatus(s.cfg.StateDir, status); err != nil {
		s.log.Error("record exit status", "err", err)
	}
	s.mu.Lock()
	s.status = status
	for sub := range s.subs {
		sub.close()
		delete(s.subs, sub)
	}
	if s.stdin != nil && s.stdin != s.console {
		s.stdin.Close()
	}
	s.stdin = nil
	close(s.exited)
	s.mu.Unlock()
}

func writeExitStatus(dir string, st ExitStatus) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, exitName+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, exitName))
}

// copyOutput copies one output stream to the log and the attached clients.
// A slow client never blocks the container: its queue fills and it is cut.
func (s *server) copyOutput(stream byte, r io.Reader) {
	name := "stdout"
	if stream == streamStderr {
		name = "stderr"
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			p := append([]byte(nil), buf[:n]...)
			if s.logw != nil {
				if err := s.logw.Write(name, p); err != nil {
					s.log.Warn("log write", "err", err)
				}
			}
			s.mu.Lock()
			for sub := range s.subs {
				if (stream == streamStdout && !sub.stdout) || (stream == streamStderr && !sub.stderr) {
					continue
				}
				select {
				case sub.ch <- frame{stream: stream, data: p}:
				default:
					s.log.Warn("attached client too slow; detaching it")
					sub.close()
					delete(s.subs, sub)
				}
			}
			s.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// attach registers a client for output and feeds its stdin frames to the
// container. The connection ends when the container exits.
func (s *server) attach(conn net.Conn, br *bufio.Reader, req request) {
	sub := &subscriber{conn: conn, stdout: req.Stdout, stderr: req.Stderr, ch: make(chan frame, 1024)}
	s.mu.Lock()
	select {
	case <-s.exited:
		s.mu.Unlock()
		s.reply(conn, response{})
		conn.Close()
		return
	default:
	}
	s.subs[sub] = true
	s.mu.Unlock()
	s.reply(conn, response{})

	// Writer: frames out until the queue is closed, then close the conn.
	go func() {
		for f := range sub.ch {
			w := &frameWriter{w: conn, stream: f.stream}
			if err := w.writeFrame(f.data); err != nil {
				break
			}
		}
		conn.Close()
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()
	// Reader: stdin frames in; an empty frame is the end of the client's stdin.
	err := readFrames(br, func(stream byte, p []byte) error {
		if stream != streamStdin || !req.Stdin {
			return nil
		}
		// Clients attach before the start (docker run does): hold their
		// input until the container's stdin exists.
		select {
		case <-s.started:
		case <-s.exited:
			return nil
		}
		s.mu.Lock()
		in := s.stdin
		s.mu.Unlock()
		if len(p) == 0 {
			if s.cfg.StdinOnce {
				s.mu.Lock()
				if s.stdin != nil && s.stdin != s.console {
					s.stdin.Close()
				} else if s.stdin != nil && s.console != nil {
					s.console.Write([]byte{4}) // ^D: end of input on a terminal
				}
				s.stdin = nil
				s.stdinUsed = true
				s.mu.Unlock()
			}
			return nil
		}
		if in != nil {
			if _, err := in.Write(p); err != nil {
				return nil // the container closed its stdin: drop input
			}
		}
		return nil
	})
	_ = err
	// The client went away: stop sending to it.
	s.mu.Lock()
	if s.subs[sub] {
		delete(s.subs, sub)
		sub.close()
	}
	s.mu.Unlock()
}
