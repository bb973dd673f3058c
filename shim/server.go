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
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/logs/jsonfile"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/spec"
	"golang.org/x/sys/unix"
)

const (
	// drainTimeout bounds how long output is drained after the container's
	// init exits (a process outside its pid namespace may hold the pipes).
	drainTimeout = 2 * time.Second
	// maxBacklog is how far (in bytes) an attached client may lag behind
	// the container's output before it is detached: the container is never
	// made to wait for a client, only for its log.
	maxBacklog = 4 << 20
	// readSize is the size of one read of the container's output.
	readSize = 32 << 10
	// deleteTimeout bounds the runtime's cleanup at shutdown.
	deleteTimeout = 30 * time.Second
)

// newRuntimeFunc makes the runtime that starts the container (runtime.New;
// tests give a stand-in).
type newRuntimeFunc func(runtime.Options) (runtime.Runtime, error)

// Main is the entry point of the hidden "__shim" mode; it returns the exit code.
// args: the state directory, which holds the config (shim.json). fd 3 is
// the ready pipe: closed once the socket listens, after an error message
// if the shim could not start.
//
// With "--warm POOL_DIR NAME PARENT_PID" the shim is booted in advance: it
// listens on POOL_DIR/NAME until the daemon sends it the state directory
// of the container it will serve, then carries on as above.
func Main(args []string) int {
	if (len(args) == 4 || len(args) == 5) && args[0] == "--warm" {
		return warmMain(args[1], args[2], args[3], len(args) == 5 && args[4] == prebootArg, runtime.New)
	}
	return serve(args, runtime.New)
}

func serve(args []string, newRuntime newRuntimeFunc) int {
	pipe := os.NewFile(3, "ready")
	ready := func(err error) {
		if err != nil {
			io.WriteString(pipe, err.Error())
		}
		pipe.Close()
	}
	if len(args) != 1 {
		ready(errors.New("usage: __shim STATE_DIR"))
		return 1
	}
	return serveDir(args[0], newRuntime, ready)
}

// prebootArg asks a waiting shim to boot its container's init too.
const prebootArg = "--preboot"

// warmMain waits, booted, until the daemon hands it a container. With
// preboot it also boots the container's init in advance (see
// runtime.Preboot), for the built-in runtime to take over.
func warmMain(poolDir, name, parent string, preboot bool, newRuntime newRuntimeFunc) int {
	pipe := os.NewFile(3, "ready")
	var pre *runtime.Preboot
	if preboot {
		// Without it the start is only slower: no error to report.
		pre, _ = runtime.PrebootInit()
		if pre != nil {
			// A sample of the daemon's default config (same profile).
			if s, err := spec.Generate(spec.Options{ID: "preboot", Rootfs: "/", Args: []string{"true"}}); err == nil {
				if data, err := json.Marshal(s); err == nil {
					pre.Warm(data)
				}
			}
		}
	}
	defer pre.Close()
	// A waiting shim dies with the daemon that started it (a configured one
	// outlives it). Not with PR_SET_PDEATHSIG: it is per thread, and a Go
	// program cannot clear it on every thread once configured.
	addr, release, err := socketAddrNamed(poolDir, name)
	var l net.Listener
	if err == nil {
		os.Remove(filepath.Join(poolDir, name))
		l, err = net.Listen("unix", addr)
		release()
	}
	if err == nil && strconv.Itoa(os.Getppid()) != parent {
		err = errors.New("parent is gone")
	}
	if err != nil {
		io.WriteString(pipe, err.Error())
		pipe.Close()
		return 1
	}
	pipe.Close()
	// Leave when the daemon is gone.
	configured := make(chan struct{})
	go func() {
		for {
			select {
			case <-configured:
				return
			case <-time.After(time.Second):
				if strconv.Itoa(os.Getppid()) != parent {
					pre.Close()
					os.Exit(1)
				}
			}
		}
	}()
	conn, err := l.Accept()
	l.Close()
	if err != nil {
		return 1
	}
	defer conn.Close()
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	var req struct {
		StateDir string `json:"stateDir"`
	}
	if err != nil || json.Unmarshal(line, &req) != nil || req.StateDir == "" {
		return 1
	}
	close(configured)
	if f, err := os.OpenFile(filepath.Join(req.StateDir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		unix.Dup2(int(f.Fd()), 1)
		unix.Dup2(int(f.Fd()), 2)
		f.Close()
	}
	if pre != nil {
		next := newRuntime
		newRuntime = func(o runtime.Options) (runtime.Runtime, error) {
			o.Preboot = pre
			return next(o)
		}
	}
	return serveDir(req.StateDir, newRuntime, func(err error) {
		res := response{Pid: os.Getpid()}
		if err != nil {
			res.Error = err.Error()
		}
		reply(conn, res)
		conn.Close()
	})
}

// serveDir serves the container whose state dir is stateDir; ready reports
// once the socket listens, or why the shim cannot start.
func serveDir(stateDir string, newRuntime newRuntimeFunc, ready func(error)) int {
	// The shim's heap is small and steady: collect often to keep its RSS
	// (one shim runs per container) low.
	debug.SetGCPercent(50)
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
		return fail(fmt.Errorf("config: %w", err))
	}
	cfg.StateDir = stateDir
	// Orphans of the container become our children: the external runtime
	// relies on it to wait for the process runc created.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("set child subreaper: %w", err))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("container", cfg.ID)
	// Caught, not ignored: an ignored disposition would be inherited by the
	// container's process across exec.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	go func() {
		for sig := range sigs {
			log.Info("signal ignored", "signal", sig)
		}
	}()

	s := &server{
		cfg: cfg, log: log, newRuntime: newRuntime,
		subs:    map[*subscriber]struct{}{},
		started: make(chan struct{}), failed: make(chan struct{}),
		exited: make(chan struct{}), done: make(chan struct{}),
	}
	if cfg.LogPath != "" {
		w, err := jsonfile.NewWriter(cfg.LogPath, cfg.LogMaxSize, cfg.LogMaxFiles)
		if err != nil {
			return fail(err)
		}
		s.logw = w
		defer w.Close()
	}
	sockPath := filepath.Join(stateDir, socketName)
	os.Remove(sockPath)
	addr, release, err := socketAddr(stateDir)
	if err != nil {
		return fail(err)
	}
	l, err := net.Listen("unix", addr)
	release()
	if err != nil {
		return fail(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	pidPath := filepath.Join(stateDir, pidName)
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		l.Close()
		return fail(err)
	}
	ready(nil)
	ready = nil
	// A shim whose container is never started (its daemon died, or gave
	// the start to another shim) must not wait forever.
	time.AfterFunc(unclaimedTimeout, func() {
		if !isClosed(s.started) {
			s.log.Warn("no start request: leaving")
			s.doneOnce.Do(func() { close(s.done) })
		}
	})
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
	os.Remove(sockPath)
	os.Remove(pidPath)
	return 0
}

type server struct {
	cfg        Config
	log        *slog.Logger
	logw       *jsonfile.Writer // nil: no log
	newRuntime newRuntimeFunc

	startMu sync.Mutex // one start or shutdown at a time

	mu       sync.Mutex
	rt       runtime.Runtime
	proc     runtime.Process
	startErr error
	stdin    io.WriteCloser // the container's stdin (pipe or pty); nil when none or closed
	console  *os.File
	winsize  *unix.Winsize // the last size asked for
	subs     map[*subscriber]struct{}
	execs    map[string]*os.File // terminals of running execs, by exec id
	status   ExitStatus
	logErr   atomic.Bool // a log write failed (reported once)

	started  chan struct{} // closed when the start succeeded or failed
	failed   chan struct{} // closed when the start failed
	exited   chan struct{} // closed once the exit status is recorded
	done     chan struct{} // closed by shutdown
	doneOnce sync.Once
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (s *server) handle(conn net.Conn) {
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		conn.Close()
		return
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		reply(conn, response{Error: "bad request: " + err.Error()})
		conn.Close()
		return
	}
	switch req.Op {
	case "attach":
		s.attach(conn, br, req)
		return
	case "wait":
		s.wait(conn, br)
		return
	case "exec":
		s.exec(conn, br, req)
		return
	}
	defer conn.Close()
	var res response
	var err2 error
	switch req.Op {
	case "pid":
		s.mu.Lock()
		if s.proc != nil {
			res.Pid = s.proc.Pid()
		}
		s.mu.Unlock()
	case "start":
		res.Pid, err2 = s.start()
	case "signal":
		err2 = s.signal(syscall.Signal(req.Signal))
	case "resize":
		if req.ExecID != "" {
			err2 = s.resizeExec(req.ExecID, req.Height, req.Width)
		} else {
			err2 = s.resize(req.Height, req.Width)
		}
	case "shutdown":
		if err2 = s.shutdown(); err2 == nil {
			reply(conn, res)
			s.doneOnce.Do(func() { close(s.done) })
			return
		}
	default:
		err2 = fmt.Errorf("unknown op %q", req.Op)
	}
	if err2 != nil {
		res.Error = err2.Error()
	}
	reply(conn, res)
}

func reply(conn net.Conn, res response) error {
	data, _ := json.Marshal(res)
	_, err := conn.Write(append(data, '\n'))
	return err
}

// start creates the container process with pipes or a pty for its stdio
// and starts copying its output.
func (s *server) start() (int, error) {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	s.mu.Lock()
	p, startErr := s.proc, s.startErr
	s.mu.Unlock()
	if p != nil {
		return p.Pid(), nil
	}
	if startErr != nil {
		return 0, startErr
	}
	if isClosed(s.done) {
		return 0, errors.New("shim is shutting down")
	}
	rt, err := s.newRuntime(runtime.Options{Name: s.cfg.Runtime, StateDir: s.cfg.RuntimeStateDir, CgroupParent: s.cfg.CgroupParent})
	if err != nil {
		return 0, s.failStart(nil, err)
	}
	var stdio runtime.IO
	var outR, errR, inW *os.File
	var ours, theirs []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	if !s.cfg.Tty {
		var outW, errW *os.File
		if outR, outW, err = os.Pipe(); err == nil {
			ours, theirs = append(ours, outR), append(theirs, outW)
			if errR, errW, err = os.Pipe(); err == nil {
				ours, theirs = append(ours, errR), append(theirs, errW)
			}
		}
		if err == nil && s.cfg.OpenStdin {
			var inR *os.File
			if inR, inW, err = os.Pipe(); err == nil {
				ours, theirs = append(ours, inW), append(theirs, inR)
				stdio.Stdin = inR
			}
		}
		if err != nil {
			closeAll(ours)
			closeAll(theirs)
			return 0, s.failStart(rt, fmt.Errorf("stdio pipes: %w", err))
		}
		stdio.Stdout, stdio.Stderr = outW, errW
	}
	p, err = rt.Start(context.Background(), s.cfg.ID, s.cfg.BundleDir, stdio)
	closeAll(theirs) // the container has its own copies
	if err != nil {
		closeAll(ours)
		return 0, s.failStart(rt, err)
	}
	var copiers sync.WaitGroup
	s.mu.Lock()
	s.rt, s.proc = rt, p
	if s.cfg.Tty {
		s.console = p.Console()
		if s.console != nil {
			if s.winsize != nil {
				setWinsize(s.console, s.winsize)
			}
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
		copiers.Add(1)
		go func() {
			defer copiers.Done()
			s.copyPipes(outR, errR)
			outR.Close()
			errR.Close()
		}()
	}
	s.mu.Unlock()
	close(s.started)
	go s.reap(p, &copiers)
	return p.Pid(), nil
}

// failStart records a failed start: the attached clients are let go and
// waits answered with err.
func (s *server) failStart(rt runtime.Runtime, err error) error {
	s.mu.Lock()
	s.rt = rt // Delete at shutdown releases whatever the runtime kept
	s.startErr = err
	for sub := range s.subs {
		delete(s.subs, sub)
		sub.end()
	}
	s.mu.Unlock()
	close(s.failed)
	close(s.started)
	return err
}

// reap waits for the container's exit, drains its output, records the
// status and ends the attached streams.
func (s *server) reap(p runtime.Process, copiers *sync.WaitGroup) {
	st, err := p.Wait()
	if err != nil {
		s.log.Error("wait for container", "err", err)
		st = runtime.ExitStatus{Code: 255}
	}
	drained := make(chan struct{})
	go func() { copiers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		s.log.Warn("container output still open after its exit; not waiting for it")
	}
	if s.logw != nil {
		if err := s.logw.Flush(); err != nil {
			s.log.Warn("flush log", "err", err)
		}
	}
	if st.ExitedAt.IsZero() {
		st.ExitedAt = time.Now()
	}
	status := ExitStatus{Code: st.Code, OOMKilled: st.OOMKilled, ExitedAt: st.ExitedAt.UTC()}
	if err := writeExitStatus(s.cfg.StateDir, status); err != nil {
		s.log.Error("record exit status", "err", err)
	}
	reapOrphans()
	s.mu.Lock()
	s.status = status
	for sub := range s.subs {
		delete(s.subs, sub)
		sub.end()
	}
	if s.stdin != nil && s.stdin != io.WriteCloser(s.console) {
		s.stdin.Close()
	}
	s.stdin = nil
	close(s.exited)
	s.mu.Unlock()
	// The exit status is on disk: if no daemon collects it in time (one
	// that died, or one that removed the container and then stopped), the
	// shim releases the runtime and leaves on its own.
	time.AfterFunc(unclaimedTimeout, func() {
		if s.shutdown() == nil {
			s.doneOnce.Do(func() { close(s.done) })
		}
	})
}

// unclaimedTimeout is how long a shim waits after its container's exit for
// the daemon's Shutdown.
const unclaimedTimeout = time.Minute

// reapOrphans collects the exited processes that were reparented to us
// (we are their subreaper). It runs once the container has exited, when
// no process of ours is being waited for by anyone else.
func reapOrphans() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// writeExitStatus records st in dir atomically (a reader never sees half).
func writeExitStatus(dir string, st ExitStatus) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, exitName+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, exitName))
}

// wait answers when the container exits, or gives up when the client goes.
func (s *server) wait(conn net.Conn, br *bufio.Reader) {
	defer conn.Close()
	gone := make(chan struct{})
	go func() { io.Copy(io.Discard, br); close(gone) }()
	select {
	case <-s.exited:
		s.mu.Lock()
		st := s.status
		s.mu.Unlock()
		reply(conn, response{Status: &st})
	case <-s.failed:
		reply(conn, response{Error: "container did not start: " + s.startErr.Error()})
	case <-s.done:
		reply(conn, response{Error: "shim is shutting down"})
	case <-gone:
	}
}

func (s *server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return errors.New("container is not running")
	}
	if isClosed(s.exited) {
		return errors.New("container process already finished")
	}
	if err := p.Signal(sig); err != nil {
		if errdefs.IsNotFound(err) || errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("container process already finished: %w", err)
		}
		return err
	}
	return nil
}

func (s *server) resize(height, width uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.winsize = &unix.Winsize{Row: height, Col: width}
	if s.console == nil {
		return nil // not started yet (applied at start), or no terminal
	}
	if err := setWinsize(s.console, s.winsize); err != nil {
		return fmt.Errorf("resize tty: %w", err)
	}
	return nil
}

// setWinsize sets a terminal's size (through SyscallConn: Fd would make
// the console blocking, so that Close could not interrupt a read).
func setWinsize(f *os.File, ws *unix.Winsize) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) { ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) }); err != nil {
		return err
	}
	return ioErr
}

// shutdown releases the runtime's resources; the caller then ends the
// shim. It refuses while the container runs: that would orphan it.
func (s *server) shutdown() error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	s.mu.Lock()
	running := s.proc != nil && !isClosed(s.exited)
	rt, con := s.rt, s.console
	s.mu.Unlock()
	if running {
		return fmt.Errorf("container %s is running: stop it before shutting its shim down", s.cfg.ID)
	}
	if rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
		defer cancel()
		if err := rt.Delete(ctx, s.cfg.ID); err != nil {
			s.log.Warn("runtime delete", "err", err)
		}
	}
	if con != nil {
		con.Close()
	}
	return nil
}

// copyOutput copies one output stream to the log and the attached clients.
func (s *server) copyOutput(stream byte, r io.Reader) {
	buf := make([]byte, readSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			s.output(stream, buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// copyPipes copies the stdout and stderr pipes in one loop. Two pipes
// carry no order between them; whenever both have output waiting, stdout's
// is taken first ("output, then an error" is the likely order), so that a
// short-lived process's log reads as it wrote it.
func (s *server) copyPipes(outR, errR *os.File) {
	files := [2]*os.File{outR, errR}
	streams := [2]byte{streamStdout, streamStderr}
	var fds [2]int32
	for i, f := range files {
		rc, err := f.SyscallConn()
		if err != nil {
			s.log.Error("output pipe", "err", err)
			return
		}
		// The raw fd stays valid: the files are closed after this loop.
		rc.Control(func(fd uintptr) { fds[i] = int32(fd) })
	}
	open := [2]bool{true, true}
	buf := make([]byte, readSize)
	for open[0] || open[1] {
		var pfds []unix.PollFd
		var which []int
		for i := range files {
			if open[i] {
				pfds = append(pfds, unix.PollFd{Fd: fds[i], Events: unix.POLLIN})
				which = append(which, i)
			}
		}
		if _, err := unix.Poll(pfds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			s.log.Error("poll output pipes", "err", err)
			return
		}
		for j, pfd := range pfds {
			if pfd.Revents == 0 {
				continue
			}
			i := which[j]
			// A bounded number of reads per turn: a flood on one stream
			// must not starve the other.
			for range 16 {
				n, err := unix.Read(int(fds[i]), buf)
				if n > 0 {
					s.output(streams[i], buf[:n])
					continue
				}
				if err == unix.EINTR {
					continue
				}
				if err != unix.EAGAIN {
					open[i] = false // EOF or a real error: the stream is over
				}
				break
			}
		}
	}
}

// output hands p, read from the container's stream, to the log and the
// attached clients.
func (s *server) output(stream byte, p []byte) {
	if s.logw != nil {
		name := "stdout"
		if stream == streamStderr {
			name = "stderr"
		}
		if err := s.logw.Write(name, p); err != nil && !s.logErr.Swap(true) {
			s.log.Error("write container log", "err", err)
		}
	}
	s.publish(stream, p)
}

// subscriber is one attached client's output queue.
type subscriber struct {
	conn           net.Conn
	stdout, stderr bool

	mu      sync.Mutex
	queue   []frame
	backlog int           // bytes in queue
	wake    chan struct{} // signalled when the queue gets frames
	ended   bool          // no more frames: the writer ends after the queue
}

type frame struct {
	stream byte
	data   []byte
}

func newSubscriber(conn net.Conn, req request) *subscriber {
	return &subscriber{conn: conn, stdout: req.Stdout, stderr: req.Stderr, wake: make(chan struct{}, 1)}
}

// push queues a frame; it reports false when the client is too far behind.
func (sub *subscriber) push(f frame) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.ended {
		return true
	}
	if sub.backlog+len(f.data) > maxBacklog {
		return false
	}
	sub.queue = append(sub.queue, f)
	sub.backlog += len(f.data)
	select {
	case sub.wake <- struct{}{}:
	default:
	}
	return true
}

// end lets the writer send what is queued, then close the connection.
func (sub *subscriber) end() {
	sub.mu.Lock()
	sub.ended = true
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// writeOut sends the queued frames, all that piled up at once, until the
// queue is ended and empty; then it closes the connection.
func (sub *subscriber) writeOut() error {
	defer sub.conn.Close()
	bw := bufio.NewWriterSize(sub.conn, 64<<10)
	for {
		sub.mu.Lock()
		batch, ended := sub.queue, sub.ended
		sub.queue = nil
		sub.mu.Unlock()
		for _, f := range batch {
			if err := writeFrame(bw, f.stream, f.data); err != nil {
				return err
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		sub.mu.Lock()
		sub.backlog -= frameBytes(batch)
		sub.mu.Unlock()
		if ended && len(batch) == 0 {
			return nil
		}
		if len(batch) == 0 {
			<-sub.wake
		}
	}
}

func frameBytes(fs []frame) int {
	n := 0
	for _, f := range fs {
		n += len(f.data)
	}
	return n
}

// publish queues p for the clients that want stream. A client whose backlog
// is over the bound is cut off rather than waited for.
func (s *server) publish(stream byte, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var data []byte
	for sub := range s.subs {
		if (stream == streamStdout && !sub.stdout) || (stream == streamStderr && !sub.stderr) {
			continue
		}
		if data == nil {
			data = append([]byte(nil), p...)
		}
		if sub.push(frame{stream: stream, data: data}) {
			continue
		}
		s.log.Warn("attached client too slow: detaching it", "backlog", maxBacklog)
		delete(s.subs, sub)
		sub.end()
		sub.conn.Close()
	}
}

// attach registers a client for output and feeds its stdin frames to the
// container until the connection ends.
func (s *server) attach(conn net.Conn, br *bufio.Reader, req request) {
	sub := newSubscriber(conn, req)
	s.mu.Lock()
	over := isClosed(s.exited) || s.startErr != nil
	if !over {
		s.subs[sub] = struct{}{}
	}
	s.mu.Unlock()
	if err := reply(conn, response{}); err != nil || over {
		s.detach(sub)
		conn.Close()
		return
	}
	go func() {
		if err := sub.writeOut(); err != nil {
			s.detach(sub)
		}
	}()
	stdinOver := !req.Stdin
	readFrames(br, func(stream byte, p []byte) error {
		if stream != streamStdin || stdinOver {
			return nil
		}
		if len(p) == 0 {
			stdinOver = true
			s.endStdin(sub)
			return nil
		}
		s.writeStdin(p)
		return nil
	})
	// The client hung up: its stdin is over too.
	if !stdinOver {
		s.endStdin(sub)
	}
	s.detach(sub)
}

// detach stops sending output to sub; its writer then closes the connection.
func (s *server) detach(sub *subscriber) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
	sub.end()
}

// writeStdin feeds p to the container's stdin, once it has started. A
// container that does not read holds up this client only.
func (s *server) writeStdin(p []byte) {
	select {
	case <-s.started:
	case <-s.done:
		return
	}
	s.mu.Lock()
	in := s.stdin
	s.mu.Unlock()
	if in != nil {
		in.Write(p) // an error means the container closed its stdin: drop
	}
}

// endStdin handles the end of a client's stdin as Docker does: with
// StdinOnce (and no terminal) the container's stdin is closed; otherwise
// it stays open and this client's attach ends.
func (s *server) endStdin(sub *subscriber) {
	if !s.cfg.StdinOnce || s.cfg.Tty {
		s.detach(sub)
		return
	}
	select {
	case <-s.started: // input sent before the start was written first
	case <-s.done:
		return
	}
	s.mu.Lock()
	if s.stdin != nil {
		s.stdin.Close()
		s.stdin = nil
	}
	s.mu.Unlock()
}
