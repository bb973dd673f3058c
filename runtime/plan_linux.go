package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// initPlan is everything the init does, worked out by Start from the
// spec. Start sends it in a compact hand-written encoding: decoding the
// OCI JSON (and compiling seccomp) in a freshly exec'd init costs
// milliseconds of reflection on every container start.
type initPlan struct {
	Root              string
	RootReadonly      bool
	RootPropagation   uint64
	Hostname          string
	Domainname        string
	Joins             []nsJoin // namespaces entered by path (per-thread ones)
	MountNS, UTSNS    bool
	NewCgroupNS       bool
	Mounts            []planMount
	DevTmpfs          bool // /dev is a tmpfs of ours: create devices and links
	Devices           []planDevice
	Sysctls           []string // key, value, key, value...
	MaskedPaths       []string
	ReadonlyPaths     []string
	Terminal          bool
	ConsoleH          uint64
	ConsoleW          uint64
	Args, Env         []string
	Cwd               string
	UID, GID          uint64
	Gids              []uint64
	Umask             uint64
	Caps              [5]uint64 // bounding, effective, permitted, inheritable, ambient
	NoNewPrivs        bool
	Rlimits           []uint64 // resource, soft, hard triples
	Seccomp           []uint64 // compiled filter, one instruction per entry
	SeccompFlags      uint64
	SeccompConfigured bool
}

type nsJoin struct {
	Flag uint64
	Path string
}

const (
	mountKindOther uint64 = iota
	mountKindBind
	mountKindCgroup
)

type planMount struct {
	Kind        uint64
	Source      string
	Dest        string // as in the spec; resolved inside the root by the init
	Type        string
	Flags       uint64
	Data        string
	Propagation []uint64
}

type planDevice struct {
	Path         string
	Mode         uint64 // S_IF* | permissions
	Major, Minor uint64
	UID, GID     uint64
}

// seccompFlags maps the OCI filter flags to seccomp(2) flags.
var seccompFlags = map[specs.LinuxSeccompFlag]uint64{
	specs.LinuxSeccompFlagLog:                unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:          unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 1 << 5,
}

// compileFunc compiles a seccomp configuration (seccomp.Compile).
type compileFunc func(*specs.LinuxSeccomp) ([]bpf.RawInstruction, error)

// makePlan works out the init's plan from a validated spec. Relative paths
// (root) are taken from bundle.
func makePlan(s *specs.Spec, bundle string, compile compileFunc) (*initPlan, error) {
	p := &initPlan{
		Root:          s.Root.Path,
		RootReadonly:  s.Root.Readonly,
		Hostname:      s.Hostname,
		Domainname:    s.Domainname,
		MaskedPaths:   s.Linux.MaskedPaths,
		ReadonlyPaths: s.Linux.ReadonlyPaths,
		Terminal:      s.Process.Terminal,
		Args:          s.Process.Args,
		Env:           s.Process.Env,
		Cwd:           s.Process.Cwd,
		UID:           uint64(s.Process.User.UID),
		GID:           uint64(s.Process.User.GID),
		Umask:         0o022,
		NoNewPrivs:    s.Process.NoNewPrivileges,
	}
	if !filepath.IsAbs(p.Root) {
		p.Root = filepath.Join(bundle, p.Root)
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if !filepath.IsAbs(p.Cwd) {
		return nil, fmt.Errorf("process.cwd %q is not absolute", p.Cwd)
	}
	p.RootPropagation = unix.MS_SLAVE | unix.MS_REC
	if rp := s.Linux.RootfsPropagation; rp != "" {
		f, ok := propagationOptions[rp]
		if !ok {
			return nil, fmt.Errorf("unknown rootfsPropagation %q", rp)
		}
		p.RootPropagation = uint64(f)
	}
	for _, ns := range s.Linux.Namespaces {
		switch {
		case ns.Path != "" && ns.Type == specs.PIDNamespace:
			// Start clones the init into it.
		case ns.Path != "":
			p.Joins = append(p.Joins, nsJoin{Flag: uint64(namespaceFlags[ns.Type]), Path: ns.Path})
		case ns.Type == specs.CgroupNamespace:
			p.NewCgroupNS = true
		}
		switch ns.Type {
		case specs.MountNamespace:
			p.MountNS = true
		case specs.UTSNamespace:
			p.UTSNS = true
		}
	}
	for _, m := range s.Mounts {
		mo := parseMountOptions(m.Options)
		pm := planMount{Source: m.Source, Dest: m.Destination, Type: m.Type, Flags: uint64(mo.flags), Data: mo.data}
		if !filepath.IsAbs(m.Destination) {
			return nil, fmt.Errorf("mount destination %q is not absolute", m.Destination)
		}
		switch {
		case m.Type == "bind" || mo.flags&unix.MS_BIND != 0:
			pm.Kind = mountKindBind
			if !filepath.IsAbs(pm.Source) {
				pm.Source = filepath.Join(bundle, pm.Source)
			}
		case m.Type == "cgroup" || m.Type == "cgroup2":
			pm.Kind = mountKindCgroup
		}
		for _, pr := range mo.propagation {
			pm.Propagation = append(pm.Propagation, uint64(pr))
		}
		p.Mounts = append(p.Mounts, pm)
		if filepath.Clean(m.Destination) == "/dev" {
			p.DevTmpfs = m.Type == "tmpfs"
		}
	}
	for _, d := range append(append([]specs.LinuxDevice{}, defaultDevices...), s.Linux.Devices...) {
		pd := planDevice{Path: d.Path, Major: uint64(d.Major), Minor: uint64(d.Minor), Mode: 0o666}
		if d.FileMode != nil {
			pd.Mode = uint64(*d.FileMode & 0o7777)
		}
		switch d.Type {
		case "c", "u":
			pd.Mode |= unix.S_IFCHR
		case "b":
			pd.Mode |= unix.S_IFBLK
		case "p":
			pd.Mode |= unix.S_IFIFO
		default:
			return nil, fmt.Errorf("device %s: unknown type %q", d.Path, d.Type)
		}
		if d.UID != nil {
			pd.UID = uint64(*d.UID)
		}
		if d.GID != nil {
			pd.GID = uint64(*d.GID)
		}
		p.Devices = append(p.Devices, pd)
	}
	for k, v := range s.Linux.Sysctl {
		if k == "" || strings.Contains(k, "/") || strings.Contains(k, "..") {
			return nil, fmt.Errorf("sysctl %q: invalid name", k)
		}
		p.Sysctls = append(p.Sysctls, k, v)
	}
	if cs := s.Process.ConsoleSize; cs != nil {
		p.ConsoleH, p.ConsoleW = uint64(cs.Height), uint64(cs.Width)
	}
	for _, g := range s.Process.User.AdditionalGids {
		p.Gids = append(p.Gids, uint64(g))
	}
	if s.Process.User.Umask != nil {
		p.Umask = uint64(*s.Process.User.Umask)
	}
	c := newProcessCaps(s.Process.Capabilities)
	p.Caps = [5]uint64{uint64(c.bounding), uint64(c.effective), uint64(c.permitted), uint64(c.inheritable), uint64(c.ambient)}
	for _, rl := range s.Process.Rlimits {
		res, ok := rlimitTypes[rl.Type]
		if !ok {
			return nil, fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		p.Rlimits = append(p.Rlimits, uint64(res), rl.Soft, rl.Hard)
	}
	if sc := s.Linux.Seccomp; sc != nil {
		prog, err := compile(sc)
		if err != nil {
			return nil, fmt.Errorf("seccomp: %w", err)
		}
		p.SeccompConfigured = true
		p.Seccomp = make([]uint64, len(prog))
		for i, ins := range prog {
			p.Seccomp[i] = uint64(ins.Op) | uint64(ins.Jt)<<16 | uint64(ins.Jf)<<24 | uint64(ins.K)<<32
		}
		for _, f := range sc.Flags {
			fl, ok := seccompFlags[f]
			if !ok {
				return nil, fmt.Errorf("seccomp: unknown flag %q", f)
			}
			p.SeccompFlags |= fl
		}
	}
	return p, nil
}

// seccompProgram turns the plan's filter back into instructions.
func (p *initPlan) seccompProgram() []bpf.RawInstruction {
	prog := make([]bpf.RawInstruction, len(p.Seccomp))
	for i, v := range p.Seccomp {
		prog[i] = bpf.RawInstruction{Op: uint16(v), Jt: uint8(v >> 16), Jf: uint8(v >> 24), K: uint32(v >> 32)}
	}
	return prog
}

// planWriter and planReader are the plan's encoding: uvarints, and strings
// and lists prefixed by their length.
type planWriter struct{ b []byte }

func (w *planWriter) u(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *planWriter) s(v string) { w.u(uint64(len(v))); w.b = append(w.b, v...) }
func (w *planWriter) t(v bool) {
	if v {
		w.u(1)
	} else {
		w.u(0)
	}
}
func (w *planWriter) ss(v []string) {
	w.u(uint64(len(v)))
	for _, x := range v {
		w.s(x)
	}
}
func (w *planWriter) us(v []uint64) {
	w.u(uint64(len(v)))
	for _, x := range v {
		w.u(x)
	}
}

var errPlanTruncated = errors.New("init plan: truncated or malformed")

type planReader struct {
	b   []byte
	err error
}

func (r *planReader) u() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errPlanTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *planReader) s() string {
	n := r.u()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errPlanTruncated
		return ""
	}
	v := string(r.b[:n])
	r.b = r.b[n:]
	return v
}

func (r *planReader) t() bool { return r.u() != 0 }

// count reads a list length, refusing ones the remaining bytes cannot hold
// (every element takes at least one byte).
func (r *planReader) count() int {
	n := r.u()
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = errPlanTruncated
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

func (r *planReader) ss() []string {
	n := r.count()
	if n == 0 {
		return nil
	}
	v := make([]string, n)
	for i := range v {
		v[i] = r.s()
	}
	return v
}

func (r *planReader) us() []uint64 {
	n := r.count()
	if n == 0 {
		return nil
	}
	v := make([]uint64, n)
	for i := range v {
		v[i] = r.u()
	}
	return v
}

func (p *initPlan) encode() []byte {
	w := &planWriter{b: make([]byte, 0, 4096)}
	w.s(p.Root)
	w.t(p.RootReadonly)
	w.u(p.RootPropagation)
	w.s(p.Hostname)
	w.s(p.Domainname)
	w.u(uint64(len(p.Joins)))
	for _, j := range p.Joins {
		w.u(j.Flag)
		w.s(j.Path)
	}
	w.t(p.MountNS)
	w.t(p.UTSNS)
	w.t(p.NewCgroupNS)
	w.u(uint64(len(p.Mounts)))
	for _, m := range p.Mounts {
		w.u(m.Kind)
		w.s(m.Source)
		w.s(m.Dest)
		w.s(m.Type)
		w.u(m.Flags)
		w.s(m.Data)
		w.us(m.Propagation)
	}
	w.t(p.DevTmpfs)
	w.u(uint64(len(p.Devices)))
	for _, d := range p.Devices {
		w.s(d.Path)
		w.u(d.Mode)
		w.u(d.Major)
		w.u(d.Minor)
		w.u(d.UID)
		w.u(d.GID)
	}
	w.ss(p.Sysctls)
	w.ss(p.MaskedPaths)
	w.ss(p.ReadonlyPaths)
	w.t(p.Terminal)
	w.u(p.ConsoleH)
	w.u(p.ConsoleW)
	w.ss(p.Args)
	w.ss(p.Env)
	w.s(p.Cwd)
	w.u(p.UID)
	w.u(p.GID)
	w.us(p.Gids)
	w.u(p.Umask)
	for _, c := range p.Caps {
		w.u(c)
	}
	w.t(p.NoNewPrivs)
	w.us(p.Rlimits)
	w.t(p.SeccompConfigured)
	w.us(p.Seccomp)
	w.u(p.SeccompFlags)
	return w.b
}

func decodePlan(b []byte) (*initPlan, error) {
	r := &planReader{b: b}
	p := &initPlan{}
	p.Root = r.s()
	p.RootReadonly = r.t()
	p.RootPropagation = r.u()
	p.Hostname = r.s()
	p.Domainname = r.s()
	if n := r.count(); n > 0 {
		p.Joins = make([]nsJoin, n)
		for i := range p.Joins {
			p.Joins[i] = nsJoin{Flag: r.u(), Path: r.s()}
		}
	}
	p.MountNS = r.t()
	p.UTSNS = r.t()
	p.NewCgroupNS = r.t()
	if n := r.count(); n > 0 {
		p.Mounts = make([]planMount, n)
		for i := range p.Mounts {
			m := &p.Mounts[i]
			m.Kind = r.u()
			m.Source = r.s()
			m.Dest = r.s()
			m.Type = r.s()
			m.Flags = r.u()
			m.Data = r.s()
			m.Propagation = r.us()
		}
	}
	p.DevTmpfs = r.t()
	if n := r.count(); n > 0 {
		p.Devices = make([]planDevice, n)
		for i := range p.Devices {
			d := &p.Devices[i]
			d.Path = r.s()
			d.Mode = r.u()
			d.Major = r.u()
			d.Minor = r.u()
			d.UID = r.u()
			d.GID = r.u()
		}
	}
	p.Sysctls = r.ss()
	p.MaskedPaths = r.ss()
	p.ReadonlyPaths = r.ss()
	p.Terminal = r.t()
	p.ConsoleH = r.u()
	p.ConsoleW = r.u()
	p.Args = r.ss()
	p.Env = r.ss()
	p.Cwd = r.s()
	p.UID = r.u()
	p.GID = r.u()
	p.Gids = r.us()
	p.Umask = r.u()
	for i := range p.Caps {
		p.Caps[i] = r.u()
	}
	p.NoNewPrivs = r.t()
	p.Rlimits = r.us()
	p.SeccompConfigured = r.t()
	p.Seccomp = r.us()
	p.SeccompFlags = r.u()
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, errPlanTruncated
	}
	if len(p.Args) == 0 || len(p.Sysctls)%2 != 0 || len(p.Rlimits)%3 != 0 {
		return nil, errors.New("init plan: inconsistent")
	}
	return p, nil
}
