// Package seccomp compiles an OCI seccomp configuration into a classic BPF
// program and installs it, in pure Go (no libseccomp, so berth stays a
// static CGO_ENABLED=0 binary).
//
// CONTRACT (agreed with runtime/): the exported names and signatures in this
// file are what other packages call.
package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Compile turns cfg into a BPF program for the running architecture.
// Syscalls unknown on this architecture are skipped, as runc does.
func Compile(cfg *specs.LinuxSeccomp) ([]bpf.RawInstruction, error) {
	return compile(cfg, runtime.GOARCH)
}

// Load compiles cfg and installs it on the calling thread with
// seccomp(SECCOMP_SET_MODE_FILTER). The caller has locked its OS thread and
// either holds CAP_SYS_ADMIN or has set no_new_privs; the filter applies to
// the program the thread later execs.
func Load(cfg *specs.LinuxSeccomp) error {
	prog, err := Compile(cfg)
	if err != nil {
		return err
	}
	flags, err := loadFlags(cfg.Flags)
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", errno)
	}
	return nil
}

// loadFlags maps the OCI flag names to SECCOMP_FILTER_FLAG_* bits. TSYNC
// is refused: the filter belongs on the thread that execs the container
// process, not on every thread of the caller.
func loadFlags(names []specs.LinuxSeccompFlag) (uint, error) {
	var flags uint
	for _, f := range names {
		switch f {
		case specs.LinuxSeccompFlagLog:
			flags |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			flags |= 1 << 5 // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		default:
			return 0, fmt.Errorf("seccomp: unsupported flag %q", f)
		}
	}
	return flags, nil
}
