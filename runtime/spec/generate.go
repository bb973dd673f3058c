package spec

import (
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	seccompprofile "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ociVersion is what Docker 20.10 writes; older runtimes (crun 1.8) reject
// newer versions, and every field used here exists in 1.0.2.
const ociVersion = "1.0.2-dev"

const (
	defaultPath    = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	defaultShmSize = 64 << 20
	cpuPeriod      = 100000
)

// Docker 20.10's masked and read-only paths.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
	}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

func generate(opts Options, h host) (*specs.Spec, error) {
	if len(opts.Args) == 0 {
		return nil, errdefs.InvalidParameterf("no command specified")
	}
	sec, err := parseSecurityOpts(opts.SecurityOpt)
	if err != nil {
		return nil, err
	}
	hostname := opts.Hostname
	if hostname == "" {
		hostname = shortID(opts.ID)
	}
	cwd := opts.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return nil, errdefs.InvalidParameterf("the working directory '%s' is invalid, it needs to be an absolute path", cwd)
	}
	cwd = path.Clean(cwd)

	usr, home, err := resolveUser(opts.Rootfs, opts.User)
	if err != nil {
		return nil, err
	}

	allCaps := h.boundingCaps()
	caps, err := tweakCaps(allCaps, opts.CapAdd, opts.CapDrop, opts.Privileged)
	if err != nil {
		return nil, err
	}

	rlimits, err := clampRlimits(opts.Ulimits, h.hardLimit)
	if err != nil {
		return nil, err
	}

	oom := opts.OomScoreAdj
	s := &specs.Spec{
		Version: ociVersion,
		Process: &specs.Process{
			Terminal: opts.Tty,
			User:     usr,
			Args:     append([]string(nil), opts.Args...),
			Env:      containerEnv(opts.Env, hostname, home, opts.Tty),
			Cwd:      cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps,
				Effective: append([]string(nil), caps...),
				Permitted: append([]string(nil), caps...),
			},
			Rlimits:         rlimits,
			NoNewPrivileges: sec.noNewPrivileges,
			OOMScoreAdj:     &oom,
		},
		Root:     &specs.Root{Path: opts.Rootfs, Readonly: opts.ReadonlyRootfs},
		Hostname: hostname,
		Linux: &specs.Linux{
			Sysctl:      map[string]string{},
			Resources:   resources(opts),
			CgroupsPath: opts.CgroupsPath,
		},
	}
	if s.Linux.CgroupsPath == "" {
		s.Linux.CgroupsPath = "/berth/" + opts.ID
	}

	ns, err := namespaces(opts, h.cgroupUnified())
	if err != nil {
		return nil, err
	}
	s.Linux.Namespaces = ns

	// Docker lets unprivileged processes bind low ports and ping inside a
	// container's own network namespace.
	if opts.NetworkMode != "host" {
		s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] = "0"
		s.Linux.Sysctl["net.ipv4.ping_group_range"] = "0 2147483647"
	}
	for k, v := range opts.Sysctls {
		s.Linux.Sysctl[k] = v
	}

	s.Mounts, err = mounts(opts, sec.writableCgroups)
	if err != nil {
		return nil, err
	}

	if opts.Privileged {
		s.Linux.Devices = h.devices()
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	} else if !sec.systemPathsOpen {
		s.Linux.MaskedPaths = append([]string(nil), maskedPaths...)
		s.Linux.ReadonlyPaths = append([]string(nil), readonlyPaths...)
	}

	// Docker drops seccomp for privileged containers, even with a profile.
	if !opts.Privileged && !sec.seccompUnconfined {
		if sec.seccompProfile != "" {
			s.Linux.Seccomp, err = seccompprofile.LoadProfile(sec.seccompProfile, s)
		} else {
			s.Linux.Seccomp, err = seccompprofile.GetDefaultProfile(s)
		}
		if err != nil {
			return nil, errdefs.InvalidParameterf("seccomp profile: %v", err)
		}
	}
	return s, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// containerEnv builds the environment the way Docker does: PATH default,
// HOSTNAME, TERM for a tty, then the container's variables replacing those
// with the same key in place; a bare "KEY" removes KEY. HOME comes from
// passwd when not set, as runc's init would add it.
func containerEnv(env []string, hostname, home string, tty bool) []string {
	out := []string{"PATH=" + defaultPath, "HOSTNAME=" + hostname}
	if tty {
		out = append(out, "TERM=xterm")
	}
	index := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	removed := map[int]bool{}
	for _, kv := range env {
		k, _, hasValue := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			if !hasValue {
				removed[i] = true
				delete(index, k)
				continue
			}
			out[i] = kv
			continue
		}
		if !hasValue {
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	if _, ok := index["HOME"]; !ok && home != "" {
		index["HOME"] = len(out)
		out = append(out, "HOME="+home)
	}
	if len(removed) == 0 {
		return out
	}
	kept := out[:0]
	for i, kv := range out {
		if !removed[i] {
			kept = append(kept, kv)
		}
	}
	return kept
}

type securityOpts struct {
	noNewPrivileges   bool
	systemPathsOpen   bool // systempaths=unconfined: no masked or read-only paths
	writableCgroups   bool
	seccompUnconfined bool
	seccompProfile    string
}

// parseSecurityOpts reads --security-opt values; Docker accepts both
// "key=value" and the legacy "key:value".
func parseSecurityOpts(opts []string) (securityOpts, error) {
	var s securityOpts
	for _, o := range opts {
		if o == "no-new-privileges" {
			s.noNewPrivileges = true
			continue
		}
		k, v, ok := strings.Cut(o, "=")
		if !ok || strings.ContainsAny(k, ":") {
			k, v, ok = strings.Cut(o, ":")
		}
		if !ok {
			return s, errdefs.InvalidParameterf("invalid --security-opt 1: %q", o)
		}
		switch k {
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return s, errdefs.InvalidParameterf("invalid --security-opt 2: %q", o)
			}
			s.noNewPrivileges = b
		case "seccomp":
			if v == "unconfined" {
				s.seccompUnconfined = true
			} else {
				s.seccompProfile = v
			}
		case "systempaths":
			if v != "unconfined" {
				return s, errdefs.InvalidParameterf("invalid --security-opt 2: %q", o)
			}
			s.systemPathsOpen = true
		case "writable-cgroups":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return s, errdefs.InvalidParameterf("invalid --security-opt 2: %q", o)
			}
			s.writableCgroups = b
		case "apparmor", "label":
			// No AppArmor or SELinux on the hosts berth targets; accepted
			// and ignored as Docker does when the LSM is missing.
		default:
			return s, errdefs.InvalidParameterf("invalid --security-opt 2: %q", o)
		}
	}
	return s, nil
}

// rlimitNames maps Docker's ulimit names to the RLIMIT_* resources.
var rlimitNames = map[string]int{
	"core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA,
	"fsize": unix.RLIMIT_FSIZE, "locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK,
	"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE,
	"nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS, "rtprio": unix.RLIMIT_RTPRIO,
	"rttime": unix.RLIMIT_RTTIME, "sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK,
	"as": unix.RLIMIT_AS,
}

// clampRlimits normalises names to RLIMIT_* and lowers any hard limit above
// this host's (raising one needs CAP_SYS_RESOURCE, which hosts may lack;
// the exec would then fail).
func clampRlimits(in []specs.POSIXRlimit, hard func(int) (uint64, bool)) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	seen := map[string]int{}
	for _, rl := range in {
		name := strings.ToLower(strings.TrimPrefix(strings.ToUpper(rl.Type), "RLIMIT_"))
		res, ok := rlimitNames[name]
		if !ok {
			return nil, errdefs.InvalidParameterf("invalid ulimit type: %s", rl.Type)
		}
		if rl.Soft > rl.Hard {
			return nil, errdefs.InvalidParameterf("ulimit soft limit must be less than or equal to hard limit: %d > %d", rl.Soft, rl.Hard)
		}
		r := specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(name), Hard: rl.Hard, Soft: rl.Soft}
		if max, ok := hard(res); ok && r.Hard > max {
			r.Hard = max
			r.Soft = min(r.Soft, max)
		}
		if i, dup := seen[r.Type]; dup {
			out[i] = r
			continue
		}
		seen[r.Type] = len(out)
		out = append(out, r)
	}
	return out, nil
}

func resources(opts Options) *specs.LinuxResources {
	major := func(n int64) *int64 { return &n }
	dev := func(allow bool, typ string, maj, min int64) specs.LinuxDeviceCgroup {
		d := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: "rwm"}
		if typ != "" {
			d.Major, d.Minor = major(maj), major(min)
		}
		return d
	}
	disableOOM := false
	shares := uint64(max(opts.CPUShares, 0))
	weight := uint16(0)
	r := &specs.LinuxResources{
		// Deny everything, then allow Docker's standard devices: null,
		// zero, full, urandom, random, tty, console; deny tun (10:229).
		Devices: []specs.LinuxDeviceCgroup{
			dev(false, "", 0, 0),
			dev(true, "c", 1, 5),
			dev(true, "c", 1, 3),
			dev(true, "c", 1, 9),
			dev(true, "c", 1, 8),
			dev(true, "c", 5, 0),
			dev(true, "c", 5, 1),
			dev(false, "c", 10, 229),
		},
		Memory:  &specs.LinuxMemory{DisableOOMKiller: &disableOOM},
		CPU:     &specs.LinuxCPU{Shares: &shares},
		BlockIO: &specs.LinuxBlockIO{Weight: &weight},
	}
	if opts.Memory > 0 {
		limit := opts.Memory
		r.Memory.Limit = &limit
		swap := opts.MemorySwap
		if swap == 0 {
			swap = 2 * limit
		}
		r.Memory.Swap = &swap
	}
	if opts.NanoCPUs > 0 {
		period := uint64(cpuPeriod)
		quota := opts.NanoCPUs * cpuPeriod / 1e9
		r.CPU.Period = &period
		r.CPU.Quota = &quota
	}
	if opts.PidsLimit != 0 {
		limit := opts.PidsLimit
		if limit < 0 {
			limit = -1
		}
		r.Pids = &specs.LinuxPids{Limit: &limit}
	}
	return r
}

func namespaces(opts Options, cgroupUnified bool) ([]specs.LinuxNamespace, error) {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	switch opts.NetworkMode {
	case "host":
	case "", "none", "bridge", "default":
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	default:
		if !path.IsAbs(opts.NetworkMode) {
			return nil, errdefs.InvalidParameterf("invalid network mode %q: want none, host or a netns path", opts.NetworkMode)
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: opts.NetworkMode})
	}
	ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace})
	switch opts.PidMode {
	case "", "private":
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	case "host":
	default:
		return nil, errdefs.InvalidParameterf("invalid PID mode %q", opts.PidMode)
	}
	switch opts.IpcMode {
	case "", "private", "shareable", "none":
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace})
	case "host":
	default:
		return nil, errdefs.InvalidParameterf("invalid IPC mode %q", opts.IpcMode)
	}
	// Docker gives a private cgroup namespace only on pure cgroup v2.
	if cgroupUnified {
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	return ns, nil
}

// mounts returns Docker's default mounts adjusted for opts, followed by the
// caller's mounts sorted by depth (parents before children).
func mounts(opts Options, writableCgroups bool) ([]specs.Mount, error) {
	shm := opts.ShmSize
	if shm == 0 {
		shm = defaultShmSize
	}
	if shm < 0 {
		return nil, errdefs.InvalidParameterf("SHM size can not be less than 0")
	}
	defaults := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
	switch opts.IpcMode {
	case "host":
		defaults = append(defaults, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate"}})
	case "none":
	default:
		defaults = append(defaults, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
			Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shm, 10)}})
	}

	user := make([]specs.Mount, 0, len(opts.Mounts))
	userDest := map[string]bool{}
	userDev := false
	for _, m := range opts.Mounts {
		if !path.IsAbs(m.Destination) {
			return nil, errdefs.InvalidParameterf("invalid mount destination %q: must be absolute", m.Destination)
		}
		m.Destination = path.Clean(m.Destination)
		m.Options = append([]string(nil), m.Options...)
		if opts.ReadonlyRootfs && m.Type == "bind" && isNetworkFile(m.Destination) {
			m.Options = append(m.Options, "ro")
		}
		userDest[m.Destination] = true
		if m.Destination == "/dev" {
			userDev = true
		}
		user = append(user, m)
	}
	sort.SliceStable(user, func(i, j int) bool { return depth(user[i].Destination) < depth(user[j].Destination) })

	var out []specs.Mount
	for _, m := range defaults {
		if userDest[m.Destination] || (userDev && strings.HasPrefix(m.Destination, "/dev/")) {
			continue
		}
		m.Options = append([]string(nil), m.Options...)
		switch {
		case writableCgroups && !opts.Privileged && m.Type == "cgroup":
			m.Options = append([]string{"rw"}, without(m.Options, "ro")...)
		case opts.Privileged && (m.Type == "sysfs" || m.Type == "cgroup"):
			m.Options = without(m.Options, "ro")
			if m.Type == "cgroup" {
				m.Options = append([]string{"rw"}, m.Options...)
			}
		case opts.ReadonlyRootfs && !writableWithReadonlyRoot(m.Destination) && !contains(m.Options, "ro"):
			m.Options = append(m.Options, "ro")
		}
		out = append(out, m)
	}
	return append(out, user...), nil
}

func isNetworkFile(dest string) bool {
	return dest == "/etc/resolv.conf" || dest == "/etc/hostname" || dest == "/etc/hosts"
}

func writableWithReadonlyRoot(dest string) bool {
	switch dest {
	case "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue":
		return true
	}
	return false
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

func without(list []string, v string) []string {
	out := list[:0]
	for _, s := range list {
		if s != v {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
