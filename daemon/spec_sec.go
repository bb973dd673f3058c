package daemon

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/runtime/spec"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// SecConfig is the daemon's configuration of container security and
// runtimes.
type SecConfig struct {
	// Init runs containers under the tiny init unless they say --init=false.
	Init bool
	// Runtimes maps --runtime names to OCI runtime binaries (--add-runtime).
	Runtimes map[string]string
}

// initPath is where the init is mounted, as Docker mounts its tini.
const initPath = "/sbin/docker-init"

// validateSecHostConfig checks at create what Docker refuses with a 400.
func (d *Daemon) validateSecHostConfig(hc *container.HostConfig) error {
	if hc.Runtime != "" {
		if _, err := d.runtimePath(hc.Runtime); err != nil {
			return err
		}
	}
	for _, mode := range []struct{ name, v string }{{"PID", string(hc.PidMode)}, {"IPC", string(hc.IpcMode)}, {"UTS", string(hc.UTSMode)}} {
		switch {
		case mode.v == "", mode.v == "host", mode.v == "private" && mode.name != "UTS",
			(mode.v == "shareable" || mode.v == "none") && mode.name == "IPC":
		case strings.HasPrefix(mode.v, "container:") && mode.name != "UTS" && len(mode.v) > len("container:"):
		default:
			return errdefs.InvalidParameterf("invalid %s mode: %s", strings.ToLower(mode.name), mode.v)
		}
	}
	for k := range hc.Sysctls {
		if err := validateSysctl(k, hc); err != nil {
			return err
		}
	}
	if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
		return errdefs.InvalidParameterf("Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj)
	}
	if hc.CPUShares < 0 {
		return errdefs.InvalidParameterf("invalid CPU shares (%d): value must be a positive integer", hc.CPUShares)
	}
	if hc.NanoCPUs > int64(hostCPUs())*1e9 {
		return errdefs.InvalidParameterf("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", hostCPUs(), hostCPUs())
	}
	if hc.Memory > 0 && hc.MemorySwap > 0 && hc.MemorySwap < hc.Memory {
		return errdefs.InvalidParameterf("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if hc.MemorySwap > 0 && hc.Memory == 0 {
		return errdefs.InvalidParameterf("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if hc.ShmSize < 0 {
		return errdefs.InvalidParameterf("SHM size can not be less than 0")
	}
	if hc.CpusetCpus != "" && !validCPUSet(hc.CpusetCpus, hostCPUs()) {
		return errdefs.InvalidParameterf("Requested CPUs are not available - requested %s, available: 0-%d", hc.CpusetCpus, hostCPUs()-1)
	}
	return nil
}

// validCPUSet checks a list like "0-2,4" against n CPUs.
func validCPUSet(s string, n int) bool {
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 || a >= n {
			return false
		}
		if isRange {
			b, err := strconv.Atoi(hi)
			if err != nil || b < a || b >= n {
				return false
			}
		}
	}
	return true
}

// Docker's namespaced sysctls: only these may be set in a container.
var ipcSysctls = []string{"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}

func validateSysctl(k string, hc *container.HostConfig) error {
	switch {
	case slices.Contains(ipcSysctls, k) || strings.HasPrefix(k, "fs.mqueue."):
		if hc.IpcMode == "host" {
			return errdefs.InvalidParameterf("sysctl '%s' not allowed with host ipc namespace", k)
		}
	case strings.HasPrefix(k, "net."):
		if hc.NetworkMode == "host" {
			return errdefs.InvalidParameterf("sysctl '%s' not allowed in host network namespace", k)
		}
	case k == "kernel.domainname" || k == "kernel.hostname":
		if hc.UTSMode == "host" {
			return errdefs.InvalidParameterf("sysctl '%s' not allowed in host UTS namespace", k)
		}
	default:
		return errdefs.InvalidParameterf("sysctl '%s' is not whitelisted", k)
	}
	return nil
}

// runtimePath maps a --runtime name to its binary; "" is the daemon's default.
func (d *Daemon) runtimePath(name string) (string, error) {
	switch name {
	case "":
		return d.cfg.Runtime, nil
	case "berth", "io.containerd.runc.v2-berth":
		return "", nil
	}
	if p, ok := d.cfg.Sec.Runtimes[name]; ok {
		return p, nil
	}
	if name == "runc" {
		if p, err := exec.LookPath("runc"); err == nil {
			return p, nil
		}
	}
	return "", errdefs.InvalidParameterf("Unknown runtime specified %s", name)
}

// runtimeFor is the OCI runtime binary of c ("" is the built-in runtime).
func (d *Daemon) runtimeFor(c *Container) string {
	p, err := d.runtimePath(c.HostConfig.Runtime)
	if err != nil {
		return d.cfg.Runtime
	}
	return p
}

// secOptions adjusts the spec options before generation: the init, and
// the namespace modes that join another container (resolved afterwards).
// Caller holds c.mu.
func (d *Daemon) secOptions(c *Container, opts *spec.Options) {
	hc := c.HostConfig
	if strings.HasPrefix(string(hc.PidMode), "container:") {
		opts.PidMode = ""
	}
	if strings.HasPrefix(string(hc.IpcMode), "container:") {
		opts.IpcMode = ""
	}
	if hc.Init != nil && *hc.Init || hc.Init == nil && d.cfg.Sec.Init {
		if exe, err := os.Executable(); err == nil && isStatic(exe) {
			opts.Args = append([]string{initPath, "--"}, opts.Args...)
			opts.Mounts = append(opts.Mounts, specs.Mount{
				Destination: initPath, Type: "bind", Source: exe, Options: []string{"bind", "ro", "rprivate"},
			})
		}
	}
}

// adjustSpec adds what spec.Options cannot say: devices, extra groups,
// namespaces joined from other containers, the host UTS namespace, cpuset
// and CFS quota. Caller holds c.mu.
func (d *Daemon) adjustSpec(c *Container, s *specs.Spec) error {
	hc := c.HostConfig
	for _, m := range []struct {
		mode string
		typ  specs.LinuxNamespaceType
		what string
	}{{string(hc.PidMode), specs.PIDNamespace, "PID"}, {string(hc.IpcMode), specs.IPCNamespace, "IPC"}} {
		ref, ok := strings.CutPrefix(m.mode, "container:")
		if !ok {
			continue
		}
		pid, err := d.runningPid(ref, m.what)
		if err != nil {
			return err
		}
		setNamespace(s, m.typ, fmt.Sprintf("/proc/%d/ns/%s", pid, nsFile(m.typ)))
	}
	if hc.UTSMode == "host" {
		removeNamespace(s, specs.UTSNamespace)
		s.Hostname = ""
	}
	for _, dm := range hc.Devices {
		if err := addDevice(s, dm); err != nil {
			return err
		}
	}
	if len(hc.GroupAdd) > 0 && s.Process != nil {
		for _, g := range hc.GroupAdd {
			gid, err := lookupGroup(s.Root.Path, g)
			if err != nil {
				return err
			}
			if !slices.Contains(s.Process.User.AdditionalGids, gid) {
				s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, gid)
			}
		}
	}
	if r := s.Linux.Resources; r != nil {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		r.CPU.Cpus, r.CPU.Mems = hc.CpusetCpus, hc.CpusetMems
		if hc.NanoCPUs == 0 && hc.CPUQuota != 0 {
			q := hc.CPUQuota
			r.CPU.Quota = &q
			if hc.CPUPeriod != 0 {
				p := uint64(hc.CPUPeriod)
				r.CPU.Period = &p
			}
		}
		if hc.MemoryReservation > 0 && r.Memory != nil {
			res := hc.MemoryReservation
			r.Memory.Reservation = &res
		}
	}
	return nil
}

func (d *Daemon) runningPid(ref, what string) (int, error) {
	other, err := d.containers.get(ref)
	if err != nil {
		return 0, err
	}
	other.mu.Lock()
	defer other.mu.Unlock()
	if other.State.Status != container.StateRunning || other.State.Pid == 0 {
		return 0, errdefs.Conflictf("cannot join %s of a non running container: %s", what, other.ID)
	}
	return other.State.Pid, nil
}

func nsFile(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.PIDNamespace:
		return "pid"
	case specs.IPCNamespace:
		return "ipc"
	}
	return string(t)
}

func setNamespace(s *specs.Spec, t specs.LinuxNamespaceType, path string) {
	for i := range s.Linux.Namespaces {
		if s.Linux.Namespaces[i].Type == t {
			s.Linux.Namespaces[i].Path = path
			return
		}
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
}

func removeNamespace(s *specs.Spec, t specs.LinuxNamespaceType) {
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
}

// addDevice puts a host device node into the container with its cgroup
// rule, as --device does.
func addDevice(s *specs.Spec, dm container.DeviceMapping) error {
	var st unix.Stat_t
	if err := unix.Stat(dm.PathOnHost, &st); err != nil {
		return errdefs.InvalidParameterf("error gathering device information while adding custom device %q: %v", dm.PathOnHost, err)
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return errdefs.InvalidParameterf("error gathering device information while adding custom device %q: not a device node", dm.PathOnHost)
	}
	dst := dm.PathInContainer
	if dst == "" {
		dst = dm.PathOnHost
	}
	perms := dm.CgroupPermissions
	if perms == "" {
		perms = "rwm"
	}
	major, minor := int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := uint32(0), uint32(0)
	s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{
		Path: filepath.Clean(dst), Type: typ, Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid,
	})
	if s.Linux.Resources != nil {
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
			Allow: true, Type: typ, Major: &major, Minor: &minor, Access: perms,
		})
	}
	return nil
}

// lookupGroup resolves a --group-add name or number in the rootfs's
// /etc/group.
func lookupGroup(rootfs, g string) (uint32, error) {
	if n, err := strconv.ParseUint(g, 10, 32); err == nil {
		return uint32(n), nil
	}
	p, err := securejoin.SecureJoin(rootfs, "etc/group")
	if err != nil {
		return 0, err
	}
	f, err := os.Open(p)
	if err == nil {
		defer f.Close()
		groups, err := user.ParseGroupFilter(f, func(gr user.Group) bool { return gr.Name == g })
		if err == nil && len(groups) > 0 {
			return uint32(groups[0].Gid), nil
		}
	}
	return 0, errdefs.InvalidParameterf("Unable to find group %s: no matching entries in group file", g)
}

// isStatic tells whether the binary at p needs no dynamic loader, so that
// it runs in any container as its init.
func isStatic(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// workdirError is Docker's answer when the working directory cannot be
// made: a file in the way is named as such.
func workdirError(wd, host string, err error) error {
	if fi, statErr := os.Stat(host); statErr == nil && !fi.IsDir() {
		return errdefs.InvalidParameterf("Cannot mkdir: %s is not a directory", wd)
	}
	return fmt.Errorf("create working directory %s: %w", wd, err)
}

// secInfo adds to /info what this area knows: the open descriptor count
// (Docker's NFd; leak checks read it with NGoroutines), the runtimes and
// the init.
func (d *Daemon) secInfo(info *system.Info) {
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		info.NFd = len(fds)
	}
	if info.Runtimes == nil {
		info.Runtimes = map[string]system.RuntimeWithStatus{}
	}
	if p, err := exec.LookPath("runc"); err == nil {
		info.Runtimes["runc"] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: p}}
	}
	for name, p := range d.cfg.Sec.Runtimes {
		info.Runtimes[name] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: p}}
	}
	if exe, err := os.Executable(); err == nil {
		info.InitBinary = exe
	}
}
