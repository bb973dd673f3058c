package seccomp

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	profiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// run interprets prog the way the kernel's seccomp does for the opcodes
// the compiler emits (native little-endian loads from seccomp_data).
func run(t testing.TB, prog []bpf.RawInstruction, arch, nr uint32, args ...uint64) uint32 {
	t.Helper()
	ret, _ := runSteps(t, prog, arch, nr, args...)
	return ret
}

// runSteps also counts the instructions executed.
func runSteps(t testing.TB, prog []bpf.RawInstruction, arch, nr uint32, args ...uint64) (uint32, int) {
	t.Helper()
	var data [64]byte
	binary.LittleEndian.PutUint32(data[0:], nr)
	binary.LittleEndian.PutUint32(data[4:], arch)
	for i, a := range args {
		binary.LittleEndian.PutUint64(data[16+8*i:], a)
	}
	var A uint32
	for pc, steps := 0, 1; pc < len(prog); pc, steps = pc+1, steps+1 {
		in := prog[pc]
		switch in.Op {
		case opLdAbsW:
			if in.K > 60 || in.K%4 != 0 {
				t.Fatalf("pc %d: bad load offset %d", pc, in.K)
			}
			A = binary.LittleEndian.Uint32(data[in.K:])
		case opAndK:
			A &= in.K
		case opRetK:
			return in.K, steps
		case opJa:
			pc += int(in.K)
		case jeq, jgt, jge:
			var cond bool
			switch in.Op {
			case jeq:
				cond = A == in.K
			case jgt:
				cond = A > in.K
			case jge:
				cond = A >= in.K
			}
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		default:
			t.Fatalf("pc %d: unexpected opcode %#x", pc, in.Op)
		}
	}
	t.Fatalf("fell off the end of the program")
	return 0, 0
}

func uptr(v uint) *uint { return &v }

const (
	archX86_64 = unix.AUDIT_ARCH_X86_64
	archI386   = unix.AUDIT_ARCH_I386
	archARM64  = unix.AUDIT_ARCH_AARCH64
)

var (
	allow  = uint32(retAllow)
	eperm  = uint32(retErrno | uint32(unix.EPERM))
	enosys = uint32(retErrno | uint32(unix.ENOSYS))
)

type call struct {
	arch uint32
	nr   uint32
	args []uint64
	want uint32
}

func TestCompileSemantics(t *testing.T) {
	const (
		getpid = 39 // x86_64
		mkdir  = 83
		write  = 1
		kill   = 62
		ptrace = 101
	)
	arg := func(i uint, op specs.LinuxSeccompOperator, v, v2 uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Op: op, Value: v, ValueTwo: v2}
	}
	opRule := func(op specs.LinuxSeccompOperator, v, v2 uint64) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"write"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(2, op, v, v2)}}}}
	}
	w := func(a2 uint64, want uint32) call {
		return call{archX86_64, write, []uint64{0, 0, a2}, want}
	}
	big := uint64(0x1_0000_0005) // hi word 1, lo word 5

	tests := []struct {
		name  string
		cfg   *specs.LinuxSeccomp
		calls []call
	}{
		{"actions", &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: uptr(42)},
				{Names: []string{"getpid"}, Action: specs.ActKillProcess},
				{Names: []string{"kill"}, Action: specs.ActKill},
				{Names: []string{"ptrace"}, Action: specs.ActTrap},
				{Names: []string{"write"}, Action: specs.ActLog},
				{Names: []string{"read"}, Action: specs.ActTrace, ErrnoRet: uptr(7)},
				{Names: []string{"close"}, Action: specs.ActErrno},
			}},
			[]call{
				{archX86_64, mkdir, nil, retErrno | 42},
				{archX86_64, getpid, nil, retKillProcess},
				{archX86_64, kill, nil, retKillThread},
				{archX86_64, ptrace, nil, retTrap},
				{archX86_64, write, nil, retLog},
				{archX86_64, 0, nil, retTrace | 7},
				{archX86_64, 3, nil, eperm},
				{archX86_64, 2, nil, allow},
				// Default allow: no ENOSYS stub for new syscalls.
				{archX86_64, 999, nil, allow},
				// Only the native arch was asked for: others are refused.
				{archI386, 20, nil, enosys},
				{archX86_64, x32SyscallBit | 39, nil, enosys},
			}},
		{"default errno ret and ENOSYS above the profile's newest syscall", &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(13),
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid", "mkdir"}, Action: specs.ActAllow}}},
			[]call{
				{archX86_64, getpid, nil, allow},
				{archX86_64, mkdir, nil, allow},
				{archX86_64, write, nil, retErrno | 13},
				{archX86_64, mkdir + 1, nil, enosys},
				{archX86_64, 450, nil, enosys},
			}},
		{"unknown names skipped, names per arch", &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"no_such_syscall", "getpid", "socketcall", "_llseek"}, Action: specs.ActAllow}}},
			[]call{
				{archX86_64, getpid, nil, allow},
				{archI386, 20, nil, allow},                   // getpid on i386
				{archI386, 102, nil, allow},                  // socketcall, i386 only
				{archI386, 140, nil, allow},                  // _llseek, i386 only
				{archX86_64, 2, nil, eperm},                  // open on x86_64
				{archX86_64, 102, nil, enosys},               // above the newest named
				{archX86_64, x32SyscallBit | 39, nil, allow}, // getpid on x32
				{archX86_64, x32SyscallBit | 2, nil, eperm},
				{archARM64, 172, nil, enosys}, // arm64 not listed
			}},
		{"arm64 table", &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchAARCH64},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActAllow}}},
			[]call{{archARM64, 172, nil, allow}, {archARM64, 39, nil, eperm}}},
		{"EQ 64-bit", opRule(specs.OpEqualTo, big, 0), []call{w(big, allow), w(5, eperm), w(1<<32, eperm)}},
		{"NE 64-bit", opRule(specs.OpNotEqual, big, 0), []call{w(big, eperm), w(5, allow), w(1<<32|6, allow), w(0, allow)}},
		{"GT 64-bit", opRule(specs.OpGreaterThan, big, 0), []call{w(big, eperm), w(big+1, allow), w(2<<32, allow), w(6, eperm), w(big-1, eperm)}},
		{"GE 64-bit", opRule(specs.OpGreaterEqual, big, 0), []call{w(big, allow), w(big+1, allow), w(big-1, eperm), w(0xffffffff, eperm)}},
		{"LT 64-bit", opRule(specs.OpLessThan, big, 0), []call{w(big, eperm), w(big-1, allow), w(6, allow), w(2<<32, eperm), w(big+1, eperm)}},
		{"LE 64-bit", opRule(specs.OpLessEqual, big, 0), []call{w(big, allow), w(big-1, allow), w(big+1, eperm), w(^uint64(0), eperm)}},
		{"MASKED_EQ 64-bit", opRule(specs.OpMaskedEqual, 0xff00_0000_00ff, 0x1200_0000_0034),
			[]call{w(0x1200_0000_0034, allow), w(0x12ff_ffff_ff34, allow), w(0x1300_0000_0034, eperm), w(0x1200_0000_0035, eperm)}},
		{"several conditions are ANDed", &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"write"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 1, 0), arg(2, specs.OpLessThan, 100, 0)}}}},
			[]call{
				{archX86_64, write, []uint64{1, 0, 99}, allow},
				{archX86_64, write, []uint64{2, 0, 99}, eperm},
				{archX86_64, write, []uint64{1, 0, 100}, eperm},
			}},
		{"same index twice is ORed (runc)", &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"write"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 1, 0), arg(0, specs.OpEqualTo, 2, 0)}}}},
			[]call{w(0, eperm), {archX86_64, write, []uint64{1}, allow}, {archX86_64, write, []uint64{2}, allow}, {archX86_64, write, []uint64{3}, eperm}}},
		{"rules tried in order, then default", &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"write"}, Action: specs.ActErrno, ErrnoRet: uptr(5), Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 5, 0)}},
				{Names: []string{"write"}, Action: specs.ActErrno, ErrnoRet: uptr(6), Args: []specs.LinuxSeccompArg{arg(0, specs.OpGreaterEqual, 5, 0)}},
				{Names: []string{"write"}, Action: specs.ActErrno, ErrnoRet: uptr(7)},
			}},
			[]call{
				{archX86_64, write, []uint64{5}, retErrno | 5},
				{archX86_64, write, []uint64{6}, retErrno | 6},
				{archX86_64, write, []uint64{4}, retErrno | 7},
			}},
		{"i386 compares the low word only", &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 0xffffffff, 0)}}}},
			[]call{{archI386, 136, []uint64{0xffffffff}, allow}, {archI386, 136, []uint64{0}, eperm}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := compile(tc.cfg, "amd64")
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.calls {
				if got := run(t, prog, c.arch, c.nr, c.args...); got != c.want {
					t.Errorf("arch %#x nr %#x args %#x: got %#x, want %#x", c.arch, c.nr, c.args, got, c.want)
				}
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := map[string]*specs.LinuxSeccomp{
		"nil":           nil,
		"bad default":   {DefaultAction: "SCMP_ACT_WHATEVER"},
		"notify":        {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}},
		"listener":      {DefaultAction: specs.ActAllow, ListenerPath: "/run/x.sock"},
		"bad op":        {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_FOO"}}}}},
		"bad index":     {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}},
		"errno too big": {DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(70000)},
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := compile(cfg, "amd64"); err == nil {
				t.Error("no error")
			}
		})
	}
	if _, err := compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, "s390x"); err == nil {
		t.Error("unsupported arch: no error")
	}
}

func defaultProfile(t testing.TB, caps ...string) *specs.LinuxSeccomp {
	t.Helper()
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	p, err := profiles.GetDefaultProfile(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Docker's default profile, decision by decision.
func TestDockerDefaultProfile(t *testing.T) {
	prog, err := compile(defaultProfile(t, "CAP_CHOWN"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d instructions", len(prog))
	const (
		cloneNewUser = unix.CLONE_NEWUSER
		threadFlags  = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD | unix.CLONE_SYSVSEM
	)
	calls := []struct {
		name string
		call
	}{
		{"read", call{archX86_64, unix.SYS_READ, nil, allow}},
		{"execve", call{archX86_64, unix.SYS_EXECVE, nil, allow}},
		{"mount", call{archX86_64, unix.SYS_MOUNT, nil, eperm}},
		{"unshare", call{archX86_64, unix.SYS_UNSHARE, nil, eperm}},
		{"keyctl", call{archX86_64, unix.SYS_KEYCTL, nil, eperm}},
		{"clone thread", call{archX86_64, unix.SYS_CLONE, []uint64{threadFlags}, allow}},
		{"clone newuser", call{archX86_64, unix.SYS_CLONE, []uint64{cloneNewUser}, eperm}},
		{"clone3", call{archX86_64, unix.SYS_CLONE3, nil, enosys}},
		{"personality 0", call{archX86_64, unix.SYS_PERSONALITY, []uint64{0}, allow}},
		{"personality 0xffffffff", call{archX86_64, unix.SYS_PERSONALITY, []uint64{0xffffffff}, allow}},
		{"personality 1", call{archX86_64, unix.SYS_PERSONALITY, []uint64{1}, eperm}},
		{"socket inet", call{archX86_64, unix.SYS_SOCKET, []uint64{unix.AF_INET}, allow}},
		{"socket alg", call{archX86_64, unix.SYS_SOCKET, []uint64{unix.AF_ALG}, eperm}},
		{"syscall from the future", call{archX86_64, 1000, nil, enosys}},
		{"i386 getpid", call{archI386, 20, nil, allow}},
		{"i386 mount", call{archI386, 21, nil, eperm}},
		{"x32 getpid", call{archX86_64, x32SyscallBit | 39, nil, allow}},
		{"arm64", call{archARM64, 172, nil, enosys}},
	}
	for _, c := range calls {
		if got := run(t, prog, c.arch, c.nr, c.args...); got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}
	// Every syscall is decided in a few instructions (a tree search, not a
	// scan of the whole list).
	worst := 0
	for nr := uint32(0); nr < 600; nr++ {
		_, steps := runSteps(t, prog, archX86_64, nr, 0, 0, 0)
		worst = max(worst, steps)
	}
	if worst > 40 {
		t.Errorf("worst case %d instructions per syscall", worst)
	}
	t.Logf("worst case %d instructions per syscall", worst)
	// With CAP_SYS_ADMIN the profile allows unshare and mount.
	prog, err = compile(defaultProfile(t, "CAP_SYS_ADMIN"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	for _, nr := range []uint32{unix.SYS_UNSHARE, unix.SYS_MOUNT} {
		if got := run(t, prog, archX86_64, nr); got != allow {
			t.Errorf("SYS_ADMIN nr %d: got %#x", nr, got)
		}
	}
}

func BenchmarkCompileDefault(b *testing.B) {
	p := defaultProfile(b, "CAP_CHOWN")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// Compile must never panic, whatever the profile, and what it returns must
// be a program the kernel would accept (in range jumps, ending in ret).
func FuzzCompile(f *testing.F) {
	seed, _ := json.Marshal(defaultProfile(f, "CAP_CHOWN"))
	f.Add(seed)
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[{"names":["write"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":5,"valueTwo":3,"op":"SCMP_CMP_MASKED_EQ"},{"index":1,"value":7,"op":"SCMP_CMP_LE"}]}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_KILL","architectures":["SCMP_ARCH_X32"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg specs.LinuxSeccomp
		if json.Unmarshal(data, &cfg) != nil {
			return
		}
		prog, err := compile(&cfg, "amd64")
		if err != nil {
			return
		}
		if err := validate(prog); err != nil {
			t.Fatal(err)
		}
		for _, nr := range []uint32{0, 1, 59, 400, x32SyscallBit | 1} {
			run(t, prog, archX86_64, nr, 1, 2, 3, 4, 5, 6)
		}
		run(t, prog, archI386, 4, 1)
	})
}

// validate applies the kernel's structural checks to prog.
func validate(prog []bpf.RawInstruction) error {
	if len(prog) == 0 || len(prog) > maxInsns {
		return fmt.Errorf("length %d", len(prog))
	}
	for pc, in := range prog {
		var targets []int
		switch in.Op {
		case opJa:
			targets = []int{pc + 1 + int(in.K)}
		case jeq, jgt, jge:
			targets = []int{pc + 1 + int(in.Jt), pc + 1 + int(in.Jf)}
		}
		for _, tg := range targets {
			if tg >= len(prog) {
				return fmt.Errorf("pc %d jumps out of the program", pc)
			}
		}
	}
	if prog[len(prog)-1].Op != opRetK {
		return fmt.Errorf("does not end in ret")
	}
	return nil
}

// The syscalls Docker 20.10's default profile blocked, as amicontained saw
// them from inside a container on this machine (nr 0..rseq with zero
// arguments), are exactly the ones our compiled default profile blocks.
func TestMatchesAmicontainedBaseline(t *testing.T) {
	data, err := os.ReadFile("/work/shared/reference/runtime/amicontained-docker.txt")
	if err != nil {
		t.Skipf("reference not available (/work/shared absent): %v", err)
	}
	var listed []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "Blocked Syscalls") {
			continue
		}
		if f := strings.Fields(line); len(f) > 10 && strings.ToUpper(f[0]) == f[0] {
			listed = f
		}
	}
	if len(listed) != 61 {
		t.Fatalf("parsed %d blocked syscalls, want 61", len(listed))
	}
	want := map[string]bool{}
	for _, n := range listed {
		switch n {
		case "MSGRCV", "SETPGID", "SETSID":
			// EPERM/EACCES for other reasons (no queue, pid 1's group).
		case "NAME_TO_HANDLE_AT", "PKEY_MPROTECT", "PKEY_ALLOC", "PKEY_FREE", "PROCESS_VM_READV", "PROCESS_VM_WRITEV":
			// Allowed by moby/profiles since Docker 23 (the profile
			// shipped in go.mod, and docker-default-seccomp-oci.json).
		default:
			want[strings.ToLower(n)] = true
		}
	}
	prog, err := compile(defaultProfile(t, dockerCaps...), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range syscallsAmd64 {
		if e.nr > unix.SYS_RSEQ {
			continue
		}
		if run(t, prog, archX86_64, e.nr, 0, 0, 0, 0, 0, 0) != allow {
			got[e.name] = true
		}
	}
	for n := range want {
		if !got[n] {
			t.Errorf("%s: blocked by Docker 20.10, allowed by us", n)
		}
	}
	for n := range got {
		if !want[n] {
			t.Errorf("%s: allowed by Docker 20.10, blocked by us", n)
		}
	}
}
