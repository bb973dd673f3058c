package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1 is a cgroup with one directory per v1 controller; on a hybrid host it
// also has a directory in the unified hierarchy to track processes.
type v1 struct {
	dirs  map[string]string // controller -> directory
	track *v2               // hybrid only; never given limits
}

func (m *v1) create() error {
	for ctrl, dir := range m.dirs {
		if ctrl == "cpuset" {
			if err := mkdirCpuset(dir); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
	}
	if m.track != nil {
		if err := os.MkdirAll(m.track.dir, 0o755); err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
	}
	return nil
}

// mkdirCpuset creates dir and its missing parents, filling each new
// level's cpuset.cpus and cpuset.mems from its parent: a v1 cpuset starts
// empty and refuses tasks until both are set.
func mkdirCpuset(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if err := mkdirCpuset(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return fmt.Errorf("cgroups: %w", err)
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		if cur, _ := readFile(dir, f); cur != "" {
			continue
		}
		v, err := readFile(parent, f)
		if err != nil {
			return err
		}
		if err := writeFile(dir, f, v); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) Apply(pid int) error {
	if err := m.create(); err != nil {
		return err
	}
	p := strconv.Itoa(pid)
	for _, dir := range m.dirs {
		if err := writeFile(dir, "cgroup.procs", p); err != nil {
			return err
		}
	}
	if m.track != nil {
		if err := writeFile(m.track.dir, "cgroup.procs", p); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) dir(ctrl string) (string, error) {
	d, ok := m.dirs[ctrl]
	if !ok {
		return "", errUnsupported(ctrl, errors.New("controller not mounted"))
	}
	return d, nil
}

func (m *v1) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := m.create(); err != nil {
		return err
	}
	if err := m.setMemory(r.Memory); err != nil {
		return err
	}
	if c := r.CPU; c != nil {
		if err := m.setCPU(c); err != nil {
			return err
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit != 0 {
		d, err := m.dir("pids")
		if err != nil {
			return err
		}
		if err := writeFile(d, "pids.max", pidsMax(*r.Pids.Limit)); err != nil {
			return err
		}
	}
	if b := r.BlockIO; b != nil && b.Weight != nil && *b.Weight != 0 {
		d, err := m.dir("blkio")
		if err != nil {
			return err
		}
		if err := writeFirst(d, []string{"blkio.weight", "blkio.bfq.weight"}, strconv.Itoa(int(*b.Weight))); err != nil {
			return errUnsupported("blkio weight", err)
		}
	}
	if len(r.Devices) > 0 {
		if err := m.setDevices(r.Devices); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) setMemory(mem *specs.LinuxMemory) error {
	if mem == nil {
		return nil
	}
	if mem.Limit == nil && mem.Swap == nil && mem.Reservation == nil {
		return nil
	}
	d, err := m.dir("memory")
	if err != nil {
		return err
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(d, "memory.soft_limit_in_bytes", strconv.FormatInt(*mem.Reservation, 10)); err != nil {
			return err
		}
	}
	if mem.Limit == nil || *mem.Limit == 0 {
		return nil
	}
	limit := strconv.FormatInt(*mem.Limit, 10)
	// memsw (memory+swap) must stay >= limit at every step, so the order
	// of the two writes depends on whether the limit goes up or down.
	if mem.Swap == nil || !exists(d, "memory.memsw.limit_in_bytes") {
		return writeFile(d, "memory.limit_in_bytes", limit)
	}
	swap := strconv.FormatInt(*mem.Swap, 10)
	if err := writeFile(d, "memory.limit_in_bytes", limit); err != nil {
		if err2 := writeFile(d, "memory.memsw.limit_in_bytes", swap); err2 != nil {
			return err
		}
		return writeFile(d, "memory.limit_in_bytes", limit)
	}
	return writeFile(d, "memory.memsw.limit_in_bytes", swap)
}

func (m *v1) setCPU(c *specs.LinuxCPU) error {
	if c.Shares != nil && *c.Shares != 0 || c.Period != nil || c.Quota != nil {
		d, err := m.dir("cpu")
		if err != nil {
			return err
		}
		if c.Shares != nil && *c.Shares != 0 {
			if err := writeFile(d, "cpu.shares", strconv.FormatUint(*c.Shares, 10)); err != nil {
				return err
			}
		}
		if c.Period != nil && *c.Period != 0 {
			if err := writeFile(d, "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10)); err != nil {
				return err
			}
		}
		if c.Quota != nil && *c.Quota != 0 {
			if err := writeFile(d, "cpu.cfs_quota_us", strconv.FormatInt(*c.Quota, 10)); err != nil {
				return err
			}
		}
	}
	if c.Cpus != "" || c.Mems != "" {
		d, err := m.dir("cpuset")
		if err != nil {
			return err
		}
		if c.Cpus != "" {
			if err := writeFile(d, "cpuset.cpus", c.Cpus); err != nil {
				return err
			}
		}
		if c.Mems != "" {
			if err := writeFile(d, "cpuset.mems", c.Mems); err != nil {
				return err
			}
		}
	}
	return nil
}

// setDevices writes the device rules in order: the OCI list is meant to be
// applied first to last, later rules overriding earlier ones.
func (m *v1) setDevices(rules []specs.LinuxDeviceCgroup) error {
	d, err := m.dir("devices")
	if err != nil {
		return err
	}
	for _, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		if err := writeFile(d, file, deviceRule(r)); err != nil {
			return err
		}
	}
	// Like runc, always allow mknod and the devices every container needs:
	// the standard nodes, the pty multiplexer and its slaves, tun.
	for _, rule := range []string{"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
		"c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm"} {
		if err := writeFile(d, "devices.allow", rule); err != nil {
			return err
		}
	}
	return nil
}

// deviceRule formats a rule as "type major:minor access", with "a" and
// "*" for what the rule leaves out.
func deviceRule(r specs.LinuxDeviceCgroup) string {
	typ := r.Type
	if typ == "" {
		typ = "a"
	}
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return strconv.FormatInt(*p, 10)
	}
	access := r.Access
	if access == "" {
		access = "rwm"
	}
	if typ == "a" && r.Major == nil && r.Minor == nil {
		return "a *:* " + access
	}
	return fmt.Sprintf("%s %s:%s %s", typ, num(r.Major), num(r.Minor), access)
}

func writeFirst(dir string, names []string, value string) error {
	var last error
	for _, n := range names {
		if exists(dir, n) {
			return writeFile(dir, n, value)
		}
		last = fmt.Errorf("%s: no such file", filepath.Join(dir, n))
	}
	return last
}

func pidsMax(limit int64) string {
	if limit < 0 {
		return "max"
	}
	return strconv.FormatInt(limit, 10)
}

func (m *v1) OOMKilled() (bool, error) {
	d, err := m.dir("memory")
	if err != nil {
		return false, err
	}
	n, ok, err := readKey(d, "memory.oom_control", "oom_kill")
	if err != nil {
		return false, err
	}
	if !ok {
		return false, errUnsupported("oom_kill counter", errors.New("memory.oom_control has no oom_kill"))
	}
	return n > 0, nil
}

func (m *v1) Stats() (Stats, error) {
	var s Stats
	var err error
	if d, ok := m.dirs["memory"]; ok {
		if s.MemoryUsage, err = readUint(d, "memory.usage_in_bytes"); err != nil {
			return s, err
		}
		if s.MemoryLimit, err = readUint(d, "memory.limit_in_bytes"); err != nil {
			return s, err
		}
	}
	if d, ok := m.dirs["pids"]; ok {
		if s.Pids, err = readUint(d, "pids.current"); err != nil {
			return s, err
		}
	}
	if d, ok := m.dirs["cpuacct"]; ok {
		if s.CPUUsageNs, err = readUint(d, "cpuacct.usage"); err != nil {
			return s, err
		}
	}
	return s, nil
}

// Destroy kills the processes (found in any hierarchy) and removes every
// directory of the cgroup.
func (m *v1) Destroy() error {
	// Freeze first so nothing forks while we kill, when the freezer is there.
	if d, ok := m.dirs["freezer"]; ok && exists(d, "freezer.state") {
		_ = writeFile(d, "freezer.state", "FROZEN")
	}
	var errs []string
	// Kill everything seen in any hierarchy before removing, so that the
	// SIGKILLs are delivered while frozen and act at thaw.
	for _, d := range m.dirs {
		killAll(d)
	}
	if d, ok := m.dirs["freezer"]; ok && exists(d, "freezer.state") {
		_ = writeFile(d, "freezer.state", "THAWED")
	}
	for _, d := range m.dirs {
		if err := killAndRemove(d, false); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if m.track != nil {
		if err := killAndRemove(m.track.dir, true); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
