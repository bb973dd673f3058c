package cgroups

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroup v2 has no devices files: access to device nodes is decided by
// eBPF programs of type CGROUP_DEVICE attached to the cgroup. This file
// compiles the OCI device rules into such a program and attaches it,
// with raw bpf(2) calls to keep the dependencies light.

// eBPF opcodes used below.
const (
	ebpfLdxW    = 0x61 // BPF_LDX | BPF_MEM | BPF_W
	ebpfAnd32K  = 0x54 // BPF_ALU | BPF_AND | BPF_K
	ebpfRsh32K  = 0x74 // BPF_ALU | BPF_RSH | BPF_K
	ebpfMov32X  = 0xbc // BPF_ALU | BPF_MOV | BPF_X
	ebpfMov32K  = 0xb4 // BPF_ALU | BPF_MOV | BPF_K
	ebpfJneK    = 0x55 // BPF_JMP | BPF_JNE | BPF_K
	ebpfJeqK    = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
	ebpfExit    = 0x95 // BPF_JMP | BPF_EXIT
	devCgBlock  = unix.BPF_DEVCG_DEV_BLOCK
	devCgChar   = unix.BPF_DEVCG_DEV_CHAR
	devAccMknod = unix.BPF_DEVCG_ACC_MKNOD
	devAccRead  = unix.BPF_DEVCG_ACC_READ
	devAccWrite = unix.BPF_DEVCG_ACC_WRITE
)

type ebpfInsn struct {
	op       uint8
	dst, src uint8
	off      int16
	imm      int32
}

func (i ebpfInsn) bytes() []byte {
	b := make([]byte, 8)
	b[0] = i.op
	b[1] = i.dst&0x0f | i.src<<4
	binary.LittleEndian.PutUint16(b[2:], uint16(i.off))
	binary.LittleEndian.PutUint32(b[4:], uint32(i.imm))
	return b
}

func accessMask(access string) (int32, error) {
	var m int32
	for _, c := range access {
		switch c {
		case 'r':
			m |= devAccRead
		case 'w':
			m |= devAccWrite
		case 'm':
			m |= devAccMknod
		default:
			return 0, fmt.Errorf("cgroups: invalid device access %q", access)
		}
	}
	if access == "" {
		m = devAccRead | devAccWrite | devAccMknod
	}
	return m, nil
}

// deviceProgram compiles rules into a CGROUP_DEVICE program. The kernel
// passes struct bpf_cgroup_dev_ctx {access_type (access<<16 | type),
// major, minor} in r1; the program returns 1 to allow, 0 to deny. Rules
// are tried last to first, the first that matches decides (later OCI
// rules override earlier ones); no match denies.
func deviceProgram(rules []specs.LinuxDeviceCgroup) ([]ebpfInsn, error) {
	prog := []ebpfInsn{
		{op: ebpfLdxW, dst: 2, src: 1, off: 0}, // r2 = access_type
		{op: ebpfAnd32K, dst: 2, imm: 0xffff},  // r2 = type
		{op: ebpfLdxW, dst: 3, src: 1, off: 0}, // r3 = access_type
		{op: ebpfRsh32K, dst: 3, imm: 16},      // r3 = access
		{op: ebpfLdxW, dst: 4, src: 1, off: 4}, // r4 = major
		{op: ebpfLdxW, dst: 5, src: 1, off: 8}, // r5 = minor
	}
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		var block []ebpfInsn // each jump's off is "to the end of block", fixed below
		var jumps []int
		switch r.Type {
		case "", "a":
		case "c", "b":
			t := int32(devCgChar)
			if r.Type == "b" {
				t = devCgBlock
			}
			jumps = append(jumps, len(block))
			block = append(block, ebpfInsn{op: ebpfJneK, dst: 2, imm: t})
		default:
			return nil, fmt.Errorf("cgroups: invalid device type %q", r.Type)
		}
		mask, err := accessMask(r.Access)
		if err != nil {
			return nil, err
		}
		if mask != devAccRead|devAccWrite|devAccMknod {
			block = append(block, ebpfInsn{op: ebpfMov32X, dst: 6, src: 3})
			if r.Allow {
				// allow only if every requested bit is allowed
				block = append(block, ebpfInsn{op: ebpfAnd32K, dst: 6, imm: ^mask})
				jumps = append(jumps, len(block))
				block = append(block, ebpfInsn{op: ebpfJneK, dst: 6})
			} else {
				// deny if any requested bit is denied
				block = append(block, ebpfInsn{op: ebpfAnd32K, dst: 6, imm: mask})
				jumps = append(jumps, len(block))
				block = append(block, ebpfInsn{op: ebpfJeqK, dst: 6})
			}
		}
		if r.Major != nil && *r.Major >= 0 {
			jumps = append(jumps, len(block))
			block = append(block, ebpfInsn{op: ebpfJneK, dst: 4, imm: int32(*r.Major)})
		}
		if r.Minor != nil && *r.Minor >= 0 {
			jumps = append(jumps, len(block))
			block = append(block, ebpfInsn{op: ebpfJneK, dst: 5, imm: int32(*r.Minor)})
		}
		verdict := int32(0)
		if r.Allow {
			verdict = 1
		}
		block = append(block, ebpfInsn{op: ebpfMov32K, dst: 0, imm: verdict}, ebpfInsn{op: ebpfExit})
		for _, j := range jumps {
			block[j].off = int16(len(block) - j - 1)
		}
		prog = append(prog, block...)
		if len(jumps) == 0 {
			// Matches everything: nothing after it is reachable, and the
			// verifier refuses unreachable code.
			return prog, nil
		}
	}
	return append(prog, ebpfInsn{op: ebpfMov32K, dst: 0, imm: 0}, ebpfInsn{op: ebpfExit}), nil
}

// attachDeviceProgram loads the program for rules and attaches it to the
// cgroup directory dir, alongside programs attached elsewhere (the
// parents' keep applying).
func attachDeviceProgram(dir string, rules []specs.LinuxDeviceCgroup) error {
	prog, err := deviceProgram(rules)
	if err != nil {
		return err
	}
	var code []byte
	for _, in := range prog {
		code = append(code, in.bytes()...)
	}
	license := []byte("Apache-2.0\x00")
	logBuf := make([]byte, 4096)
	// union bpf_attr, BPF_PROG_LOAD part up to prog_name.
	var load struct {
		progType    uint32
		insnCnt     uint32
		insns       uint64
		license     uint64
		logLevel    uint32
		logSize     uint32
		logBuf      uint64
		kernVersion uint32
		progFlags   uint32
		progName    [16]byte
	}
	load.progType = unix.BPF_PROG_TYPE_CGROUP_DEVICE
	load.insnCnt = uint32(len(prog))
	load.insns = uint64(uintptr(unsafe.Pointer(&code[0])))
	load.license = uint64(uintptr(unsafe.Pointer(&license[0])))
	load.logLevel = 1
	load.logSize = uint32(len(logBuf))
	load.logBuf = uint64(uintptr(unsafe.Pointer(&logBuf[0])))
	copy(load.progName[:], "berth_devices")
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&load)), unsafe.Sizeof(load))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	if errno != 0 {
		return fmt.Errorf("cgroups: load device program: %w: %s", errno, cString(logBuf))
	}
	defer unix.Close(int(fd))

	cg, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	defer cg.Close()
	attach := struct {
		targetFd     uint32
		attachBpfFd  uint32
		attachType   uint32
		attachFlags  uint32
		replaceBpfFd uint32
	}{uint32(cg.Fd()), uint32(fd), unix.BPF_CGROUP_DEVICE, unix.BPF_F_ALLOW_MULTI, 0}
	if _, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_ATTACH, uintptr(unsafe.Pointer(&attach)), unsafe.Sizeof(attach)); errno != 0 {
		return fmt.Errorf("cgroups: attach device program to %s: %w", dir, errno)
	}
	return nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
