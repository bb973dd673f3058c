package runtime

import (
	"context"
	"errors"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// prebootRuntime is the built-in runtime given a fresh preboot for every
// Start, as the shim gives it: TestRunBundle runs its whole table through
// it ("berth-preboot"), and each Start must have taken its preboot.
type prebootRuntime struct {
	tb       testing.TB
	stateDir string
	mu       sync.Mutex
	rts      map[string]Runtime
}

func (r *prebootRuntime) Start(ctx context.Context, id, bundle string, stdio IO) (Process, error) {
	pre, err := PrebootInit()
	if err != nil {
		r.tb.Fatalf("preboot: %v", err)
	}
	rt := newBuiltin(Options{StateDir: r.stateDir, CgroupParent: "/berth", Preboot: pre})
	p, err := rt.Start(ctx, id, bundle, stdio)
	if pre.take(prebootFlagsMatch, false) != nil {
		pre.Close()
		// Only bundles with Docker's default namespaces can take it.
		if s, lerr := loadSpec(bundle); lerr == nil && err == nil {
			flags, pidPath, _ := cloneFlags(s.Linux.Namespaces)
			if joinsNetNS(s.Linux.Namespaces) {
				flags |= unix.CLONE_NEWNET
			}
			if flags == prebootFlagsMatch && pidPath == "" && s.Linux.UIDMappings == nil {
				r.tb.Errorf("Start of a default bundle did not take the preboot")
			}
		}
	}
	r.mu.Lock()
	r.rts[id] = rt
	r.mu.Unlock()
	return p, err
}

func (r *prebootRuntime) Delete(ctx context.Context, id string) error {
	r.mu.Lock()
	rt := r.rts[id]
	delete(r.rts, id)
	r.mu.Unlock()
	if rt == nil {
		return nil
	}
	return rt.Delete(ctx, id)
}

func TestPrebootNotTakenForOtherNamespaces(t *testing.T) {
	requireRoot(t)
	busyboxRootfs(t)
	pre, err := PrebootInit()
	if err != nil {
		t.Fatal(err)
	}
	defer pre.Close()
	bundle, s := newBundle(t, "sh", "-c", "ls /sys/class/net | grep -c .")
	var ns []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type != specs.NetworkNamespace {
			ns = append(ns, n)
		}
	}
	s.Linux.Namespaces = ns // the host's network
	writeBundle(t, bundle, s)
	rt := newBuiltin(Options{StateDir: t.TempDir(), CgroupParent: "/berth", Preboot: pre})
	res, err := runBundle(t, rt, uniqueID(t), bundle)
	if err != nil {
		t.Fatal(err)
	}
	if res.stdout == "1\n" {
		t.Errorf("the container has only lo: it ran in the preboot's network namespace")
	}
	if pre.take(prebootFlagsMatch, false) == nil {
		t.Errorf("the preboot was taken by a container with other namespaces")
	}
}

func TestPrebootClose(t *testing.T) {
	requireRoot(t)
	pre, err := PrebootInit()
	if err != nil {
		t.Fatal(err)
	}
	proc := pre.cmd.Process
	pre.Close()
	pre.Close() // twice is fine
	if err := proc.Signal(nil); err == nil {
		t.Errorf("the preboot's init %d still runs after Close", proc.Pid)
	}
	var nilPre *Preboot
	nilPre.Close()
	if nilPre.take(prebootFlagsMatch, false) != nil {
		t.Error("a nil preboot was taken")
	}
}

func TestPrebootSeccompCache(t *testing.T) {
	warmed := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	cached := []bpf.RawInstruction{{Op: 6, K: 42}}
	p := &Preboot{seccomp: warmed, prog: cached}
	calls := 0
	compile := p.compiler(func(*specs.LinuxSeccomp) ([]bpf.RawInstruction, error) {
		calls++
		return nil, errors.New("compiled")
	})
	same := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	if prog, err := compile(same); err != nil || len(prog) != 1 || prog[0].K != 42 {
		t.Errorf("an equal profile was not answered from the cache: %v %v", prog, err)
	}
	other := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	if _, err := compile(other); err == nil || calls != 1 {
		t.Errorf("another profile was not compiled (calls %d, err %v)", calls, err)
	}
}
