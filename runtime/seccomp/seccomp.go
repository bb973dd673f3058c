// Package seccomp compiles an OCI seccomp configuration into a classic BPF
// program and installs it, in pure Go (no libseccomp, so berth stays a
// static CGO_ENABLED=0 binary).
//
// CONTRACT (agreed with runtime/): the exported names and signatures in this
// file are what other packages call.
package seccomp

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

var errTODO = errors.New("seccomp: not implemented yet")

// Compile turns cfg into a BPF program for the running architecture.
// Syscalls unknown on this architecture are skipped, as runc does.
func Compile(cfg *specs.LinuxSeccomp) ([]bpf.RawInstruction, error) { return nil, errTODO }

// Load compiles cfg and installs it on the calling thread with
// seccomp(SECCOMP_SET_MODE_FILTER). The caller has locked its OS thread and
// either holds CAP_SYS_ADMIN or has set no_new_privs; the filter applies to
// the program the thread later execs.
func Load(cfg *specs.LinuxSeccomp) error { return errTODO }
