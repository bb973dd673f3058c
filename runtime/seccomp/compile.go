package seccomp

import (
	"errors"
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Return values of a seccomp filter (SECCOMP_RET_*).
const (
	retKillThread  = 0x00000000
	retKillProcess = 0x80000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retTrace       = 0x7ff00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000

	x32SyscallBit = 0x40000000
	maxErrno      = 4095
)

// Offsets in struct seccomp_data (little-endian architectures only).
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// arch describes one syscall ABI the filter can meet.
type arch struct {
	audit  uint32
	table  syscallTable
	bits32 bool // arguments are 32 bits wide: compare the low word only
	x32    bool // x32 shares x86_64's audit arch, told apart by x32SyscallBit
}

var arches = map[specs.Arch]arch{
	specs.ArchX86_64:  {audit: unix.AUDIT_ARCH_X86_64, table: syscallsAmd64},
	specs.ArchX32:     {audit: unix.AUDIT_ARCH_X86_64, table: syscallsX32, x32: true},
	specs.ArchX86:     {audit: unix.AUDIT_ARCH_I386, table: syscalls386, bits32: true},
	specs.ArchAARCH64: {audit: unix.AUDIT_ARCH_AARCH64, table: syscallsArm64},
	specs.ArchARM:     {audit: unix.AUDIT_ARCH_ARM, table: syscallsArm, bits32: true},
}

var nativeArch = map[string]specs.Arch{
	"amd64": specs.ArchX86_64,
	"386":   specs.ArchX86,
	"arm64": specs.ArchAARCH64,
	"arm":   specs.ArchARM,
}

// rule is one OCI syscall rule resolved to a number on one arch.
type rule struct {
	action uint32
	args   []specs.LinuxSeccompArg
}

func compile(cfg *specs.LinuxSeccomp, goarch string) ([]bpf.RawInstruction, error) {
	if cfg == nil {
		return nil, errors.New("seccomp: no configuration")
	}
	if cfg.ListenerPath != "" {
		return nil, errors.New("seccomp: notify listeners are not supported")
	}
	native, ok := nativeArch[goarch]
	if !ok {
		return nil, fmt.Errorf("seccomp: unsupported architecture %s", goarch)
	}
	defaultAction, err := actionValue(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp: default action: %w", err)
	}
	rules, err := normalizeRules(cfg.Syscalls, defaultAction)
	if err != nil {
		return nil, err
	}

	// The native arch is always filtered (libseccomp adds it too); others
	// only when listed and known here.
	wanted := []specs.Arch{native}
	for _, a := range cfg.Architectures {
		if _, ok := arches[a]; ok && !slices.Contains(wanted, a) {
			wanted = append(wanted, a)
		}
	}
	// Group by audit arch: x86_64 and x32 share one.
	type group struct {
		audit     uint32
		main, x32 *arch
		mainLabel int
		x32Label  int
		hasMain   bool
		hasX32    bool
	}
	var groups []*group
	byAudit := map[uint32]*group{}
	for _, name := range wanted {
		a := arches[name]
		g := byAudit[a.audit]
		if g == nil {
			g = &group{audit: a.audit}
			byAudit[a.audit] = g
			groups = append(groups, g)
		}
		if a.x32 {
			g.x32, g.hasX32 = &a, true
		} else {
			g.main, g.hasMain = &a, true
		}
	}

	enosys := retErrno | uint32(unix.ENOSYS)
	var as assembler
	badArch := as.newLabel()
	as.ldAbs(offArch)
	for _, g := range groups {
		target := as.newLabel()
		g.mainLabel = target
		as.jumpIfFar(jeq, g.audit, target)
	}
	as.jump(badArch)
	for _, g := range groups {
		as.bind(g.mainLabel)
		as.ldAbs(offNr)
		if g.audit == unix.AUDIT_ARCH_X86_64 {
			x32 := badArch
			if g.hasX32 {
				x32 = as.newLabel()
				g.x32Label = x32
			}
			if g.hasMain {
				as.jumpIfFar(jge, x32SyscallBit, x32)
			} else {
				// Only x32 asked for: x86_64 syscalls are a bad arch.
				as.jumpIf(jge, x32SyscallBit, 1, next)
				as.jump(badArch)
				as.jump(x32)
			}
		}
		if g.hasMain {
			if err := emitArch(&as, g.main, rules, defaultAction); err != nil {
				return nil, err
			}
		}
		if g.hasX32 {
			as.bind(g.x32Label)
			if err := emitArch(&as, g.x32, rules, defaultAction); err != nil {
				return nil, err
			}
		}
	}
	as.bind(badArch)
	as.ret(enosys)
	return as.finish()
}

// normalizedRule is an OCI rule with its action encoded and its conditions
// checked.
type normalizedRule struct {
	names  []string
	action uint32
	args   []specs.LinuxSeccompArg
}

// normalizeRules validates the rules and splits those with several
// conditions on one argument into one rule per condition (ORed), as runc
// does. Rules whose action is the default one are dropped: they change
// nothing, and libseccomp refuses them.
func normalizeRules(syscalls []specs.LinuxSyscall, defaultAction uint32) ([]normalizedRule, error) {
	var out []normalizedRule
	for i, sc := range syscalls {
		act, err := actionValue(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("seccomp: rule %d: %w", i, err)
		}
		if act == defaultAction {
			continue
		}
		if len(sc.Args) > 6 {
			return nil, fmt.Errorf("seccomp: rule %d: %d argument conditions, at most 6", i, len(sc.Args))
		}
		var seen [6]int
		repeated := false
		for _, a := range sc.Args {
			if a.Index >= 6 {
				return nil, fmt.Errorf("seccomp: rule %d: argument index %d out of range", i, a.Index)
			}
			if !validOp(a.Op) {
				return nil, fmt.Errorf("seccomp: rule %d: unknown operator %q", i, a.Op)
			}
			seen[a.Index]++
			if seen[a.Index] > 1 {
				repeated = true
			}
		}
		if repeated {
			for _, a := range sc.Args {
				out = append(out, normalizedRule{names: sc.Names, action: act, args: []specs.LinuxSeccompArg{a}})
			}
			continue
		}
		out = append(out, normalizedRule{names: sc.Names, action: act, args: sc.Args})
	}
	return out, nil
}

func validOp(op specs.LinuxSeccompOperator) bool {
	switch op {
	case specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
		specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual:
		return true
	}
	return false
}

func actionValue(act specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	errno := uint32(unix.EPERM)
	if errnoRet != nil {
		if *errnoRet > maxErrno {
			return 0, fmt.Errorf("errnoRet %d out of range", *errnoRet)
		}
		errno = uint32(*errnoRet)
	}
	switch act {
	case specs.ActKill, specs.ActKillThread:
		return retKillThread, nil
	case specs.ActKillProcess:
		return retKillProcess, nil
	case specs.ActTrap:
		return retTrap, nil
	case specs.ActErrno:
		return retErrno | errno, nil
	case specs.ActTrace:
		return retTrace | errno, nil
	case specs.ActLog:
		return retLog, nil
	case specs.ActAllow:
		return retAllow, nil
	case specs.ActNotify:
		return 0, errors.New("SCMP_ACT_NOTIFY is not supported")
	}
	return 0, fmt.Errorf("unknown action %q", act)
}

// interval is a run of syscall numbers [lo, next interval's lo) that end
// the same way: one return value, or the rules of a single syscall.
type interval struct {
	lo     uint32
	action uint32
	rules  []rule // non-nil: conditional rules of syscall lo (a run of one)
}

// emitArch writes the filter for one ABI; the syscall number is in A.
// The numbers are split into intervals of equal outcome and searched with
// a balanced tree of jge tests, so a syscall costs a dozen instructions,
// not a walk down a list of hundreds.
func emitArch(as *assembler, a *arch, rules []normalizedRule, defaultAction uint32) error {
	perNr := make(map[uint32][]rule, 512)
	var nrs []uint32
	for _, r := range rules {
		for _, name := range r.names {
			nr, ok := a.table.lookup(name)
			if !ok {
				continue // unknown here: skipped, as runc does
			}
			if _, seen := perNr[nr]; !seen {
				nrs = append(nrs, nr)
			}
			perNr[nr] = append(perNr[nr], rule{action: r.action, args: r.args})
		}
	}
	slices.Sort(nrs)

	var ivs []interval
	add := func(lo, action uint32, rs []rule) {
		if n := len(ivs); n > 0 && ivs[n-1].lo == lo {
			ivs = ivs[:n-1] // the run before is empty: superseded
		}
		if rs == nil && len(ivs) > 0 && ivs[len(ivs)-1].rules == nil && ivs[len(ivs)-1].action == action {
			return // same outcome as the run before: extend it
		}
		ivs = append(ivs, interval{lo: lo, action: action, rules: rs})
	}
	add(0, defaultAction, nil)
	for _, nr := range nrs {
		rs := perNr[nr]
		if len(rs[0].args) == 0 {
			// First match wins: an unconditional first rule decides.
			add(nr, rs[0].action, nil)
		} else {
			add(nr, 0, rs)
		}
		if nr != ^uint32(0) {
			add(nr+1, defaultAction, nil)
		}
	}
	// Syscalls newer than any the profile names get ENOSYS rather than a
	// deny, so that libc falls back to older ones (runc does the same).
	if len(nrs) > 0 && defaultAction != retAllow && defaultAction != retLog {
		if last := nrs[len(nrs)-1]; last != ^uint32(0) {
			add(last+1, retErrno|uint32(unix.ENOSYS), nil)
		}
	}
	emitTree(as, ivs, defaultAction, a.bits32)
	return nil
}

func emitTree(as *assembler, ivs []interval, defaultAction uint32, bits32 bool) {
	if len(ivs) == 1 {
		iv := ivs[0]
		if iv.rules == nil {
			as.ret(iv.action)
			return
		}
		for _, r := range iv.rules {
			fail := as.newLabel()
			for _, c := range r.args {
				emitCond(as, c, bits32, fail)
			}
			as.ret(r.action)
			as.bind(fail)
		}
		as.ret(defaultAction)
		return
	}
	mid := len(ivs) / 2
	right := as.newLabel()
	as.jumpIfFar(jge, ivs[mid].lo, right)
	emitTree(as, ivs[:mid], defaultAction, bits32)
	as.bind(right)
	emitTree(as, ivs[mid:], defaultAction, bits32)
}

// emitCond writes one argument comparison (unsigned, 64 bits split into two
// 32-bit words): fall through when it holds, jump to fail otherwise.
func emitCond(as *assembler, c specs.LinuxSeccompArg, bits32 bool, fail int) {
	lo := uint32(offArgs + 8*c.Index)
	hi := lo + 4
	val, val2 := c.Value, c.ValueTwo
	vhi, vlo := uint32(val>>32), uint32(val)
	pass := as.newLabel()
	defer as.bind(pass)

	if c.Op == specs.OpMaskedEqual {
		// value is the mask, valueTwo the datum.
		mhi, mlo := vhi, vlo
		dhi, dlo := uint32(val2>>32), uint32(val2)
		if !bits32 {
			as.ldAbs(hi)
			as.andK(mhi)
			as.jumpIf(jeq, dhi, next, fail)
		}
		as.ldAbs(lo)
		as.andK(mlo)
		as.jumpIf(jeq, dlo, next, fail)
		return
	}
	if bits32 {
		as.ldAbs(lo)
		switch c.Op {
		case specs.OpEqualTo:
			as.jumpIf(jeq, vlo, next, fail)
		case specs.OpNotEqual:
			as.jumpIf(jeq, vlo, fail, next)
		case specs.OpGreaterThan:
			as.jumpIf(jgt, vlo, next, fail)
		case specs.OpGreaterEqual:
			as.jumpIf(jge, vlo, next, fail)
		case specs.OpLessThan:
			as.jumpIf(jge, vlo, fail, next)
		case specs.OpLessEqual:
			as.jumpIf(jgt, vlo, fail, next)
		}
		return
	}
	as.ldAbs(hi)
	switch c.Op {
	case specs.OpEqualTo:
		as.jumpIf(jeq, vhi, next, fail)
		as.ldAbs(lo)
		as.jumpIf(jeq, vlo, next, fail)
	case specs.OpNotEqual:
		as.jumpIf(jeq, vhi, next, pass)
		as.ldAbs(lo)
		as.jumpIf(jeq, vlo, fail, next)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		as.jumpIf(jgt, vhi, pass, next)
		as.jumpIf(jeq, vhi, next, fail)
		as.ldAbs(lo)
		if c.Op == specs.OpGreaterThan {
			as.jumpIf(jgt, vlo, next, fail)
		} else {
			as.jumpIf(jge, vlo, next, fail)
		}
	case specs.OpLessThan, specs.OpLessEqual:
		as.jumpIf(jgt, vhi, fail, next)
		as.jumpIf(jeq, vhi, next, pass)
		as.ldAbs(lo)
		if c.Op == specs.OpLessThan {
			as.jumpIf(jge, vlo, fail, next)
		} else {
			as.jumpIf(jgt, vlo, fail, next)
		}
	}
}
