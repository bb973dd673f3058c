package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"sync"
	"syscall"

	"github.com/berth-dev/berth/runtime/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// prebootFlags are the namespaces of Docker's default container made at
// preboot. The mount namespace is made at start (msgMountNS), as a copy of
// the host's at that time: a copy made earlier would lack the container's
// rootfs, mounted since. The cgroup namespace is made by the init once it
// is in its cgroup.
const (
	prebootFlags      = unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWPID | unix.CLONE_NEWNET
	prebootFlagsMatch = prebootFlags | unix.CLONE_NEWNS
)

// Preboot is a container init started before its container is known: the
// process runs and its namespaces exist, waiting for its plan. A Start
// whose spec asks for the same namespaces takes it over and skips the
// init's exec and Go start-up and most of the namespace creation.
//
// It is not placed in a cgroup in advance: a cgroup cannot be renamed to
// the container's on cgroup v2, and a move is cheap once the hierarchy
// favours dynamic changes (see cgroups.FavorDynMods).
type Preboot struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	sock *os.File // our end of the sync socket

	// From Warm: a seccomp profile and its compiled program.
	seccomp *specs.LinuxSeccomp
	prog    []bpf.RawInstruction
}

// Warm does ahead of time, on a sample config.json, the work Start does
// while the init boots: decoding the config and compiling its seccomp
// profile. The code gets paged in, and the compiled program is kept for a
// Start whose profile is the same (Docker's default one, nearly always).
func (p *Preboot) Warm(config []byte) {
	s, err := parseSpec(config)
	if err != nil || s.Linux == nil || s.Linux.Seccomp == nil {
		return
	}
	prog, err := seccomp.Compile(s.Linux.Seccomp)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.seccomp, p.prog = s.Linux.Seccomp, prog
	p.mu.Unlock()
}

// compiler wraps compile to answer the warmed profile from the cache.
func (p *Preboot) compiler(compile compileFunc) compileFunc {
	return func(sc *specs.LinuxSeccomp) ([]bpf.RawInstruction, error) {
		if p.seccomp != nil && reflect.DeepEqual(sc, p.seccomp) {
			return p.prog, nil
		}
		return compile(sc)
	}
}

// PrebootInit starts an init for a future default container.
func PrebootInit() (*Preboot, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("preboot: sync socket: %w", err)
	}
	parentSock := os.NewFile(uintptr(fds[0]), "sync-parent")
	childSock := os.NewFile(uintptr(fds[1]), "sync-child")
	cmd := initCommand(childSock, &syscall.SysProcAttr{Cloneflags: prebootFlags, Setsid: true})
	err = cmd.Start()
	childSock.Close()
	if err != nil {
		parentSock.Close()
		return nil, fmt.Errorf("preboot: start init: %w", err)
	}
	return &Preboot{cmd: cmd, sock: parentSock}, nil
}

// take hands the init over to a Start with the given clone flags; nil when
// it does not fit (or was taken or closed already). A network namespace
// given by path (a bridge network's, made by the daemon) fits too: the
// init joins it, leaving the one it was born in.
func (p *Preboot) take(flags uintptr, netByPath bool) *Preboot {
	if netByPath {
		flags |= unix.CLONE_NEWNET
	}
	if p == nil || flags != prebootFlagsMatch {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	taken := &Preboot{cmd: p.cmd, sock: p.sock, seccomp: p.seccomp, prog: p.prog}
	p.cmd, p.sock = nil, nil
	return taken
}

// joinsNetNS tells whether the spec puts the container in an existing
// network namespace.
func joinsNetNS(namespaces []specs.LinuxNamespace) bool {
	for _, ns := range namespaces {
		if ns.Type == specs.NetworkNamespace && ns.Path != "" {
			return true
		}
	}
	return false
}

// prepare gives the init its mount namespace and, unless it makes a pty,
// the container's stdio (it started with /dev/null).
func (p *Preboot) prepare(stdio IO, terminal bool) error {
	if err := sendMsg(int(p.sock.Fd()), msgMountNS, nil, -1); err != nil {
		return err
	}
	if terminal {
		return nil
	}
	for n, f := range []*os.File{stdio.Stdin, stdio.Stdout, stdio.Stderr} {
		if f == nil {
			continue
		}
		if err := sendMsg(int(p.sock.Fd()), msgStdio, []byte{byte('0' + n)}, int(f.Fd())); err != nil {
			return err
		}
	}
	return nil
}

// Close ends an init nobody took.
func (p *Preboot) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	// Closing our end makes the init's read fail: it exits by itself.
	p.sock.Close()
	_ = p.cmd.Process.Kill()
	_, _ = p.cmd.Process.Wait()
	p.cmd, p.sock = nil, nil
}

// receiveStdio, in the init, takes the stdio descriptors a preboot's
// Start sends before the plan.
func receiveStdio(body string, fd int) error {
	if fd < 0 || len(body) != 1 || body[0] < '0' || body[0] > '2' {
		if fd >= 0 {
			unix.Close(fd)
		}
		return errors.New("container init: bad stdio message")
	}
	err := unix.Dup3(fd, int(body[0]-'0'), 0)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("container init: stdio: %w", err)
	}
	return nil
}
