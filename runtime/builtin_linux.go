package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/runtime/cgroups"
	"github.com/berth-dev/berth/runtime/seccomp"
)

// initArg is argv[1] of the re-executed berth binary that becomes the
// container's init (cmd/berth dispatches it to InitMain).
const initArg = "__init"

// syncFd is the descriptor number of the init's end of the sync socket
// (ExtraFiles[0]).
const syncFd = 3

// builtin is berth's own runtime: the berth binary re-executes itself as
// the container init inside new namespaces. One start goes:
//
//	Start                                   init (berth __init, fd 3 = sync socket)
//	decode namespaces, clone+exec init  →   Go runtime boots
//	decode spec, compile seccomp, plan
//	send plan                           →   join namespaces by path, mounts
//	cgroup Apply+Set, oom_score_adj
//	send go                             →   cgroup ns, cgroup mounts, pivot_root,
//	                                        hostname, pty, sysctls, masked and
//	                                        read-only paths, no_new_privs, seccomp,
//	                                        caps, user, rlimits, execve
//	EOF on the socket (close-on-exec)   ←   or an error message, then exit 1
//
// The init then is the user process, the pid Wait reaps.
type builtin struct {
	opts Options

	// compileSeccomp is seccomp.Compile and newCgroup cgroups.New; tests
	// swap in stand-ins.
	compileSeccomp compileFunc
	newCgroup      func(path string) (cgroups.Manager, error)

	mu         sync.Mutex
	containers map[string]*containerState
}

// containerState is what Delete needs to release a container.
type containerState struct {
	Pid         int    `json:"pid"`
	CgroupsPath string `json:"cgroupsPath,omitempty"`
}

func newBuiltin(opts Options) *builtin {
	return &builtin{opts: opts, compileSeccomp: seccomp.Compile, newCgroup: cgroups.New, containers: map[string]*containerState{}}
}

// loadSpec reads bundle/config.json.
func loadSpec(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read bundle config: %w", err)
	}
	return parseSpec(data)
}

func parseSpec(data []byte) (*specs.Spec, error) {
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("parse config.json: %w", err))
	}
	if err := validateSpec(&s); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	return &s, nil
}

// cloneSpec is the part of the spec needed to clone the init. Decoding only
// it first lets the init boot while Start decodes the rest.
type cloneSpec struct {
	Process *struct {
		Terminal bool `json:"terminal"`
	} `json:"process"`
	Linux *struct {
		Namespaces  []specs.LinuxNamespace `json:"namespaces"`
		UIDMappings []specs.LinuxIDMapping `json:"uidMappings"`
		GIDMappings []specs.LinuxIDMapping `json:"gidMappings"`
	} `json:"linux"`
}

func validateSpec(s *specs.Spec) error {
	if !strings.HasPrefix(s.Version, "1.") {
		return fmt.Errorf("unsupported ociVersion %q", s.Version)
	}
	if s.Process == nil || len(s.Process.Args) == 0 {
		return errors.New("config.json: process.args is empty")
	}
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("config.json: root.path is empty")
	}
	if s.Linux == nil {
		return errors.New("config.json: linux section missing")
	}
	return nil
}

// namespaceFlags maps OCI namespace types to clone flags.
var namespaceFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
}

// cloneFlags returns the namespaces to create when cloning the init, and
// the pid namespace to clone it into when the spec gives one by path. The
// init joins the other namespaces given by path itself, and unshares the
// cgroup namespace only once it sits in its cgroup (the namespace's root is
// the cgroup current at creation).
func cloneFlags(namespaces []specs.LinuxNamespace) (flags uintptr, pidPath string, err error) {
	for _, ns := range namespaces {
		f, ok := namespaceFlags[ns.Type]
		if !ok {
			return 0, "", errdefs.NotImplemented(fmt.Errorf("namespace %q is not supported", ns.Type))
		}
		if ns.Path != "" {
			switch ns.Type {
			case specs.NetworkNamespace, specs.UTSNamespace, specs.IPCNamespace, specs.CgroupNamespace:
			case specs.PIDNamespace:
				pidPath = ns.Path
			default:
				return 0, "", errdefs.NotImplemented(fmt.Errorf("joining an existing %s namespace is not supported", ns.Type))
			}
			continue
		}
		if ns.Type == specs.CgroupNamespace {
			continue
		}
		flags |= f
	}
	return flags, pidPath, nil
}

// startInPidNamespace starts cmd as a member of the pid namespace at path:
// setns(CLONE_NEWPID) only sets the namespace of the calling thread's
// future children, so the clone happens on a locked thread that is thrown
// away afterwards rather than returned to the Go scheduler.
func startInPidNamespace(cmd *exec.Cmd, path string) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread exits with the goroutine
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open pid namespace: %w", err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWPID)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("join pid namespace %s: %w", path, err)
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// cgroupsPath returns the container's cgroup, or "" when the spec asks for
// neither a path nor resources (then the container stays in the caller's).
func (r *builtin) cgroupsPath(id string, s *specs.Spec) string {
	p := s.Linux.CgroupsPath
	if p == "" {
		if s.Linux.Resources == nil {
			return ""
		}
		p = id
	}
	if !path.IsAbs(p) {
		p = path.Join(r.opts.CgroupParent, p)
	}
	return p
}

// Start implements Runtime.
func (r *builtin) Start(ctx context.Context, id, bundle string, stdio IO) (Process, error) {
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read bundle config: %w", err)
	}
	var cs cloneSpec
	if err := json.Unmarshal(data, &cs); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("parse %s/config.json: %w", bundle, err))
	}
	if cs.Process == nil || cs.Linux == nil {
		return nil, errdefs.InvalidParameter(errors.New("config.json: process or linux section missing"))
	}
	flags, pidPath, err := cloneFlags(cs.Linux.Namespaces)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if _, dup := r.containers[id]; dup {
		r.mu.Unlock()
		return nil, errdefs.Conflict(fmt.Errorf("container %s is already running", id))
	}
	r.containers[id] = &containerState{}
	r.mu.Unlock()
	var attr syscall.SysProcAttr
	attr.Cloneflags = flags
	attr.Setsid = true
	if flags&unix.CLONE_NEWUSER != 0 {
		if len(cs.Linux.UIDMappings) == 0 || len(cs.Linux.GIDMappings) == 0 {
			return nil, errdefs.InvalidParameter(errors.New("config.json: a user namespace needs uidMappings and gidMappings"))
		}
		// Go writes the maps while the child waits, before it execs the
		// init; setgroups stays allowed for the user's additional groups.
		attr.UidMappings = idMaps(cs.Linux.UIDMappings)
		attr.GidMappings = idMaps(cs.Linux.GIDMappings)
		attr.GidMappingsEnableSetgroups = true
		// Become the namespace's root before exec, or the init would run
		// as the overflow uid, without capabilities.
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	pre := r.opts.Preboot.take(flags, joinsNetNS(cs.Linux.Namespaces))
	if pidPath != "" || attr.UidMappings != nil {
		pre.Close()
		pre = nil
	}
	p, err := r.start(ctx, id, bundle, data, &attr, pidPath, cs.Process.Terminal, stdio, pre)
	if err != nil {
		r.mu.Lock()
		delete(r.containers, id)
		r.mu.Unlock()
		return nil, err
	}
	return p, nil
}

func idMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, x := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(x.ContainerID), HostID: int(x.HostID), Size: int(x.Size)}
	}
	return out
}

// start runs the init (pre's when given) and hands it its plan.
func (r *builtin) start(ctx context.Context, id, bundle string, config []byte, attr *syscall.SysProcAttr, pidPath string, terminal bool, stdio IO, pre *Preboot) (*initProcess, error) {
	var cmd *exec.Cmd
	var parentSock *os.File
	if pre != nil {
		cmd, parentSock = pre.cmd, pre.sock
		if err := pre.prepare(stdio, terminal); err != nil {
			pre.Close()
			return nil, fmt.Errorf("container init: %w", err)
		}
	} else {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("sync socket: %w", err)
		}
		parentSock = os.NewFile(uintptr(fds[0]), "sync-parent")
		childSock := os.NewFile(uintptr(fds[1]), "sync-child")
		cmd = initCommand(childSock, attr)
		if !terminal {
			stdio.attach(cmd)
		}
		start := cmd.Start
		if pidPath != "" {
			start = func() error { return startInPidNamespace(cmd, pidPath) }
		}
		err = start()
		childSock.Close()
		if err != nil {
			parentSock.Close()
			return nil, fmt.Errorf("start container init: %w", err)
		}
	}
	defer parentSock.Close()
	p := &initProcess{proc: cmd.Process, done: make(chan struct{})}
	fail := func(err error) (*initProcess, error) {
		_ = p.proc.Kill()
		_, _ = p.proc.Wait()
		if p.console != nil {
			p.console.Close()
		}
		if p.cgroup != nil {
			_ = p.cgroup.Destroy()
		}
		return nil, err
	}
	// The init may hang (a stuck mount): kill it when ctx ends, which
	// closes its end of the socket and unblocks the reads below.
	stop := context.AfterFunc(ctx, func() { _ = p.proc.Kill() })
	defer stop()

	// While the init boots, decode the whole spec and work out its plan.
	s, err := parseSpec(config)
	if err != nil {
		return fail(err)
	}
	compile := r.compileSeccomp
	if pre != nil {
		compile = pre.compiler(compile)
	}
	plan, err := makePlan(s, bundle, compile)
	if err != nil {
		return fail(errdefs.InvalidParameter(fmt.Errorf("config.json: %w", err)))
	}
	if err := sendMsg(int(parentSock.Fd()), msgPlan, plan.encode(), -1); err != nil {
		return fail(fmt.Errorf("container init: %w", err))
	}
	// The init mounts meanwhile; it waits for msgGo before it shows the
	// container its cgroups, and in any case before it execs.
	cgPath := r.cgroupsPath(id, s)
	if cgPath != "" {
		cg, err := r.newCgroup(cgPath)
		if err != nil {
			return fail(fmt.Errorf("cgroup %s: %w", cgPath, err))
		}
		p.cgroup = cg
		// Limits first, then the move: the init, busy making its /dev,
		// never sees the device list half written (deny-all, then allows).
		if s.Linux.Resources != nil {
			if err := cg.Set(s.Linux.Resources); err != nil {
				return fail(fmt.Errorf("cgroup %s: set resources: %w", cgPath, err))
			}
		}
		if err := cg.Apply(p.proc.Pid); err != nil {
			return fail(fmt.Errorf("cgroup %s: apply: %w", cgPath, err))
		}
	}
	if adj := s.Process.OOMScoreAdj; adj != nil {
		// From here: the container's /proc may not show its own pid.
		f := fmt.Sprintf("/proc/%d/oom_score_adj", p.proc.Pid)
		if err := os.WriteFile(f, []byte(strconv.Itoa(*adj)), 0); err != nil {
			return fail(fmt.Errorf("set oom_score_adj: %w", err))
		}
	}
	if err := sendMsg(int(parentSock.Fd()), msgGo, nil, -1); err != nil {
		// The init failed meanwhile: its message says why.
		if kind, body, _, rerr := recvMsg(int(parentSock.Fd())); rerr == nil && kind == msgError {
			return fail(initError(body))
		}
		return fail(fmt.Errorf("container init: %w", err))
	}
	// Read until EOF: the init's end is close-on-exec, so EOF without an
	// error message means the user process has been exec'd.
	for {
		kind, body, fd, err := recvMsg(int(parentSock.Fd()))
		if err != nil {
			return fail(fmt.Errorf("container init: %w", err))
		}
		if kind == msgEOF {
			break
		}
		switch kind {
		case msgConsole:
			if fd < 0 {
				return fail(errors.New("container init: console message without a descriptor"))
			}
			p.console = os.NewFile(uintptr(fd), "pty-master")
		case msgError:
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			return fail(initError(body))
		default:
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	if terminal && p.console == nil {
		return fail(errors.New("container init: exited before sending its console"))
	}
	st := &containerState{Pid: p.proc.Pid, CgroupsPath: cgPath}
	r.mu.Lock()
	r.containers[id] = st
	r.mu.Unlock()
	if err := r.saveState(id, st); err != nil {
		return fail(err)
	}
	go p.reap()
	return p, nil
}

// initCommand is the re-execution of this binary as a container init
// whose end of the sync socket is childSock.
func initCommand(childSock *os.File, attr *syscall.SysProcAttr) *exec.Cmd {
	return &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{"berth-init", initArg},
		// The init's own environment never reaches the user process.
		Env:         []string{"GOGC=off", "GOMAXPROCS=1"},
		ExtraFiles:  []*os.File{childSock},
		SysProcAttr: attr,
	}
}

// attach makes the files cmd's stdio; a nil file stays unset (exec.Cmd
// then gives /dev/null), rather than becoming a non-nil interface holding
// a nil *os.File.
func (io IO) attach(cmd *exec.Cmd) {
	if io.Stdin != nil {
		cmd.Stdin = io.Stdin
	}
	if io.Stdout != nil {
		cmd.Stdout = io.Stdout
	}
	if io.Stderr != nil {
		cmd.Stderr = io.Stderr
	}
}

// initError classifies an error message sent by the init. Like Docker, a
// process that cannot be exec'd is a bad configuration, not a server fault;
// the message keeps Docker's words so that callers map it to 127 or 126.
func initError(msg string) error {
	err := errors.New(msg)
	for _, words := range []string{"executable file not found", "no such file or directory", "permission denied", "is a directory"} {
		if strings.Contains(msg, words) {
			return errdefs.InvalidParameter(err)
		}
	}
	return err
}

func (r *builtin) statePath(id string) string {
	return filepath.Join(r.opts.StateDir, id+".json")
}

// saveState records what Delete needs, so that a restarted caller can
// still release the container's cgroup.
func (r *builtin) saveState(id string, st *containerState) error {
	if r.opts.StateDir == "" {
		return nil
	}
	data, _ := json.Marshal(st)
	if err := os.MkdirAll(r.opts.StateDir, 0o700); err != nil {
		return fmt.Errorf("runtime state: %w", err)
	}
	tmp := r.statePath(id) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("runtime state: %w", err)
	}
	return os.Rename(tmp, r.statePath(id))
}

// Delete implements Runtime.
func (r *builtin) Delete(ctx context.Context, id string) error {
	r.mu.Lock()
	st := r.containers[id]
	delete(r.containers, id)
	r.mu.Unlock()
	if st == nil && r.opts.StateDir != "" {
		data, err := os.ReadFile(r.statePath(id))
		if err == nil {
			st = &containerState{}
			if err := json.Unmarshal(data, st); err != nil {
				st = nil
			}
		}
	}
	if st != nil && st.CgroupsPath != "" {
		cg, err := r.newCgroup(st.CgroupsPath)
		if err != nil {
			return fmt.Errorf("delete %s: cgroup: %w", id, err)
		}
		if err := cg.Destroy(); err != nil {
			return fmt.Errorf("delete %s: cgroup: %w", id, err)
		}
	}
	if r.opts.StateDir != "" {
		if err := os.Remove(r.statePath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", id, err)
		}
	}
	return nil
}

// initProcess is the container's init, which became the user process.
type initProcess struct {
	proc    *os.Process
	console *os.File
	cgroup  cgroups.Manager

	done   chan struct{}
	status ExitStatus
	err    error
}

func (p *initProcess) Pid() int          { return p.proc.Pid }
func (p *initProcess) Console() *os.File { return p.console }

func (p *initProcess) Signal(sig syscall.Signal) error {
	if err := p.proc.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return errdefs.NotFound(fmt.Errorf("signal %d: process already exited", sig))
		}
		return fmt.Errorf("signal %d: %w", sig, err)
	}
	return nil
}

func (p *initProcess) reap() {
	ps, err := p.proc.Wait()
	if err != nil {
		p.err = fmt.Errorf("wait for container process: %w", err)
	} else {
		p.status = exitStatus(ps.Sys().(syscall.WaitStatus))
	}
	if p.cgroup != nil {
		if oom, err := p.cgroup.OOMKilled(); err == nil {
			p.status.OOMKilled = oom
		}
	}
	close(p.done)
}

func (p *initProcess) Wait() (ExitStatus, error) {
	<-p.done
	return p.status, p.err
}

// exitStatus converts a wait status the way Docker reports it.
func exitStatus(ws syscall.WaitStatus) ExitStatus {
	st := ExitStatus{ExitedAt: time.Now()}
	switch {
	case ws.Signaled():
		st.Signal = ws.Signal()
		st.Code = 128 + int(ws.Signal())
	default:
		st.Code = ws.ExitStatus()
	}
	return st
}
