package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/errdefs"
)

// nsFiles names the /proc/<pid>/ns entries of the namespaces an exec
// joins, in the order it joins them: the mount namespace last, since
// entering it changes what /proc paths resolve to.
var nsFiles = []struct {
	typ  specs.LinuxNamespaceType
	file string
}{
	{specs.IPCNamespace, "ipc"},
	{specs.UTSNamespace, "uts"},
	{specs.NetworkNamespace, "net"},
	{specs.CgroupNamespace, "cgroup"},
	{specs.TimeNamespace, "time"},
	{specs.MountNamespace, "mnt"},
}

// Exec implements Execer. Like Start it re-executes the berth binary as
// an init, which here joins the container's namespaces (the pid one by
// being cloned into it), is put in the container's cgroup, and execs
// proc with the container's seccomp filter.
func (r *builtin) Exec(ctx context.Context, id, bundle string, proc *specs.Process, stdio IO) (Process, error) {
	if proc == nil || len(proc.Args) == 0 {
		return nil, errdefs.InvalidParameter(errors.New("exec: no command"))
	}
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, err
	}
	st := r.state(id)
	if st == nil || st.Pid == 0 {
		return nil, errdefs.NotFound(fmt.Errorf("container %s is not running", id))
	}
	if err := unix.Kill(st.Pid, 0); err != nil {
		return nil, errdefs.Conflict(fmt.Errorf("container %s is not running", id))
	}
	s, err := loadSpec(bundle)
	if err != nil {
		return nil, err
	}
	s.Process = proc
	plan, err := makePlan(s, bundle, r.compileSeccomp)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("exec: %w", err))
	}
	// Only what an exec does: join, console, credentials, exec.
	plan.Mounts, plan.Devices, plan.Sysctls = nil, nil, nil
	plan.MaskedPaths, plan.ReadonlyPaths = nil, nil
	plan.NewCgroupNS = false
	plan.Joins = nil
	nsDir := "/proc/" + strconv.Itoa(st.Pid) + "/ns/"
	has := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		has[ns.Type] = true
	}
	if has[specs.UserNamespace] {
		return nil, errdefs.NotImplemented(errors.New("exec into a container with a user namespace is not supported"))
	}
	for _, ns := range nsFiles {
		if has[ns.typ] {
			plan.Joins = append(plan.Joins, nsJoin{Flag: uint64(namespaceFlags[ns.typ]), Path: nsDir + ns.file})
		}
	}
	pidPath := ""
	if has[specs.PIDNamespace] {
		pidPath = nsDir + "pid"
	}
	return r.exec(ctx, plan, pidPath, st.CgroupsPath, stdio)
}

// state returns what the runtime knows of a started container, from
// memory or from its state file (a runtime made after the start).
func (r *builtin) state(id string) *containerState {
	r.mu.Lock()
	st := r.containers[id]
	r.mu.Unlock()
	if st != nil && st.Pid != 0 {
		return st
	}
	if r.opts.StateDir == "" {
		return st
	}
	data, err := os.ReadFile(r.statePath(id))
	if err != nil {
		return st
	}
	var fromFile containerState
	if json.Unmarshal(data, &fromFile) != nil {
		return st
	}
	return &fromFile
}

func (r *builtin) exec(ctx context.Context, plan *initPlan, pidPath, cgPath string, stdio IO) (*initProcess, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sync socket: %w", err)
	}
	parentSock := os.NewFile(uintptr(fds[0]), "sync-parent")
	childSock := os.NewFile(uintptr(fds[1]), "sync-child")
	defer parentSock.Close()
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{"berth-init", initArg},
		Env:         []string{"GOGC=off", "GOMAXPROCS=1"},
		ExtraFiles:  []*os.File{childSock},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if !plan.Terminal {
		stdio.attach(cmd)
	}
	start := cmd.Start
	if pidPath != "" {
		start = func() error { return startInPidNamespace(cmd, pidPath) }
	}
	if err := start(); err != nil {
		childSock.Close()
		return nil, fmt.Errorf("start exec init: %w", err)
	}
	childSock.Close()
	p := &initProcess{proc: cmd.Process, done: make(chan struct{})}
	fail := func(err error) (*initProcess, error) {
		_ = p.proc.Kill()
		_, _ = p.proc.Wait()
		if p.console != nil {
			p.console.Close()
		}
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = p.proc.Kill() })
	defer stop()
	sock := int(parentSock.Fd())
	if err := sendMsg(sock, msgExec, plan.encode(), -1); err != nil {
		return fail(fmt.Errorf("exec init: %w", err))
	}
	if cgPath != "" {
		cg, err := r.newCgroup(cgPath)
		if err != nil {
			return fail(fmt.Errorf("cgroup %s: %w", cgPath, err))
		}
		if err := cg.Apply(p.proc.Pid); err != nil {
			return fail(fmt.Errorf("cgroup %s: apply: %w", cgPath, err))
		}
	}
	if err := sendMsg(sock, msgGo, nil, -1); err != nil {
		if kind, body, _, rerr := recvMsg(sock); rerr == nil && kind == msgError {
			return fail(initError(body))
		}
		return fail(fmt.Errorf("exec init: %w", err))
	}
	for {
		kind, body, fd, err := recvMsg(sock)
		if err != nil {
			return fail(fmt.Errorf("exec init: %w", err))
		}
		if kind == msgEOF {
			break
		}
		switch kind {
		case msgConsole:
			if fd < 0 {
				return fail(errors.New("exec init: console message without a descriptor"))
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
	if plan.Terminal && p.console == nil {
		return fail(errors.New("exec init: exited before sending its console"))
	}
	go p.reap()
	return p, nil
}

// execInit runs in the re-executed binary for an exec: it enters the
// container's namespaces and cgroup, and execs the process.
func execInit(p *initPlan) error {
	// Open every namespace first: once in the mount namespace, /proc is
	// the container's.
	fds := make([]int, 0, len(p.Joins))
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, j := range p.Joins {
		fd, err := unix.Open(j.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open namespace: %w", err)
		}
		fds = append(fds, fd)
	}
	// setns(CLONE_NEWNS) refuses a thread that shares its filesystem
	// attributes, which all Go threads do: give this one its own.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare fs attributes: %w", err)
	}
	for i, j := range p.Joins {
		if err := unix.Setns(fds[i], int(j.Flag)); err != nil {
			return fmt.Errorf("join namespace %s: %w", j.Path, err)
		}
	}
	if err := waitCgroup(p); err != nil {
		return err
	}
	if p.Terminal {
		if err := openConsole(p, false); err != nil {
			return fmt.Errorf("console: %w", err)
		}
	}
	return execProcess(p)
}
