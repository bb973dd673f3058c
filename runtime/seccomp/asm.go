package seccomp

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Classic BPF opcodes used by the compiler.
const (
	opLdAbsW = 0x20 // BPF_LD | BPF_W | BPF_ABS
	opRetK   = 0x06 // BPF_RET | BPF_K
	opAndK   = 0x54 // BPF_ALU | BPF_AND | BPF_K
	opJa     = 0x05 // BPF_JMP | BPF_JA
	jeq      = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
	jgt      = 0x25 // BPF_JMP | BPF_JGT | BPF_K
	jge      = 0x35 // BPF_JMP | BPF_JGE | BPF_K

	// maxInsns is the kernel's BPF_MAXINSNS.
	maxInsns = 4096
)

// A jump target is either a small forward skip (0 = next instruction) or a
// label from newLabel, resolved by finish.
const (
	next      = 0
	labelBase = 1 << 20
)

type fixup struct {
	at     int
	jt, jf int // targets of a conditional jump
	ja     int // label of an unconditional jump
}

// assembler builds a BPF program with forward jumps to labels.
type assembler struct {
	prog   []bpf.RawInstruction
	labels []int // label index -> instruction position, -1 until bound
	fixups []fixup
}

func (a *assembler) newLabel() int {
	a.labels = append(a.labels, -1)
	return labelBase + len(a.labels) - 1
}

func (a *assembler) bind(l int) { a.labels[l-labelBase] = len(a.prog) }

func (a *assembler) ldAbs(off uint32) {
	a.prog = append(a.prog, bpf.RawInstruction{Op: opLdAbsW, K: off})
}

func (a *assembler) andK(k uint32) { a.prog = append(a.prog, bpf.RawInstruction{Op: opAndK, K: k}) }

func (a *assembler) ret(k uint32) { a.prog = append(a.prog, bpf.RawInstruction{Op: opRetK, K: k}) }

// jumpIf emits a conditional jump; jt and jf must land within 255
// instructions (the compiler keeps them local).
func (a *assembler) jumpIf(op uint16, k uint32, jt, jf int) {
	a.fixups = append(a.fixups, fixup{at: len(a.prog), jt: jt, jf: jf})
	a.prog = append(a.prog, bpf.RawInstruction{Op: op, K: k})
}

// jumpIfFar jumps to a label at any distance when the condition holds.
func (a *assembler) jumpIfFar(op uint16, k uint32, target int) {
	a.jumpIf(op, k, next, 1)
	a.jump(target)
}

func (a *assembler) jump(l int) {
	a.fixups = append(a.fixups, fixup{at: len(a.prog), ja: l})
	a.prog = append(a.prog, bpf.RawInstruction{Op: opJa})
}

func (a *assembler) offset(at, target int) (int, error) {
	if target < labelBase {
		return target, nil
	}
	pos := a.labels[target-labelBase]
	if pos < 0 {
		return 0, fmt.Errorf("seccomp: internal error: unbound label")
	}
	d := pos - at - 1
	if d < 0 {
		return 0, fmt.Errorf("seccomp: internal error: backward jump")
	}
	return d, nil
}

func (a *assembler) finish() ([]bpf.RawInstruction, error) {
	if len(a.prog) > maxInsns {
		return nil, fmt.Errorf("seccomp: filter has %d instructions, the kernel accepts at most %d", len(a.prog), maxInsns)
	}
	for _, f := range a.fixups {
		in := &a.prog[f.at]
		if in.Op == opJa {
			d, err := a.offset(f.at, f.ja)
			if err != nil {
				return nil, err
			}
			in.K = uint32(d)
			continue
		}
		jt, err := a.offset(f.at, f.jt)
		if err != nil {
			return nil, err
		}
		jf, err := a.offset(f.at, f.jf)
		if err != nil {
			return nil, err
		}
		if jt > 255 || jf > 255 {
			return nil, fmt.Errorf("seccomp: internal error: conditional jump of %d/%d", jt, jf)
		}
		in.Jt, in.Jf = uint8(jt), uint8(jf)
	}
	return a.prog, nil
}
