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

// v2 is one directory in the unified hierarchy mounted at root.
type v2 struct {
	dir  string
	root string
}

// wantControllers are enabled for the container's cgroup when available.
var wantControllers = []string{"cpu", "cpuset", "io", "memory", "pids"}

// create makes the directory, enabling the controllers in every ancestor's
// cgroup.subtree_control on the way down (each level only offers what its
// parent delegated).
func (m *v2) create() error {
	rel, err := filepath.Rel(m.root, m.dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroups: %s is outside %s", m.dir, m.root)
	}
	cur := m.root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		enableControllers(cur)
		cur = filepath.Join(cur, part)
		if err := os.Mkdir(cur, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("cgroups: %w", err)
		}
	}
	return nil
}

// enableControllers delegates what dir has of wantControllers to its
// children. Failures are left for Set to report: a missing controller only
// matters when a limit needs it.
func enableControllers(dir string) {
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return
	}
	have := strings.Fields(avail)
	enabled, _ := readFile(dir, "cgroup.subtree_control")
	on := strings.Fields(enabled)
	var add []string
	for _, c := range wantControllers {
		if contains(have, c) && !contains(on, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) > 0 {
		_ = writeFile(dir, "cgroup.subtree_control", strings.Join(add, " "))
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (m *v2) Apply(pid int) error {
	if err := m.create(); err != nil {
		return err
	}
	return writeFile(m.dir, "cgroup.procs", strconv.Itoa(pid))
}

func (m *v2) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := m.create(); err != nil {
		return err
	}
	if mem := r.Memory; mem != nil {
		if mem.Reservation != nil && *mem.Reservation != 0 {
			if err := writeFile(m.dir, "memory.low", strconv.FormatInt(*mem.Reservation, 10)); err != nil {
				return err
			}
		}
		if mem.Limit != nil && *mem.Limit != 0 {
			// OCI swap is memory+swap; v2 wants the swap part alone.
			if mem.Swap != nil && *mem.Swap != 0 {
				swap := "max"
				if *mem.Swap > 0 {
					swap = strconv.FormatInt(max(*mem.Swap-*mem.Limit, 0), 10)
				}
				if exists(m.dir, "memory.swap.max") {
					if err := writeFile(m.dir, "memory.swap.max", swap); err != nil {
						return err
					}
				}
			}
			if err := writeFile(m.dir, "memory.max", memMax(*mem.Limit)); err != nil {
				return err
			}
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			if err := writeFile(m.dir, "cpu.weight", strconv.FormatUint(sharesToWeight(*c.Shares), 10)); err != nil {
				return err
			}
		}
		if c.Quota != nil && *c.Quota != 0 || c.Period != nil && *c.Period != 0 {
			if err := writeFile(m.dir, "cpu.max", cpuMax(c.Quota, c.Period)); err != nil {
				return err
			}
		}
		if c.Cpus != "" {
			if err := writeFile(m.dir, "cpuset.cpus", c.Cpus); err != nil {
				return err
			}
		}
		if c.Mems != "" {
			if err := writeFile(m.dir, "cpuset.mems", c.Mems); err != nil {
				return err
			}
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit != 0 {
		if err := writeFile(m.dir, "pids.max", pidsMax(*r.Pids.Limit)); err != nil {
			return err
		}
	}
	if b := r.BlockIO; b != nil && b.Weight != nil && *b.Weight != 0 {
		// io.weight is 1..10000, blkio weight 10..1000.
		w := blkioToIOWeight(*b.Weight)
		if exists(m.dir, "io.bfq.weight") {
			w = uint64(*b.Weight)
			if err := writeFile(m.dir, "io.bfq.weight", strconv.FormatUint(w, 10)); err != nil {
				return err
			}
		} else if err := writeFile(m.dir, "io.weight", "default "+strconv.FormatUint(w, 10)); err != nil {
			return errUnsupported("io weight", err)
		}
	}
	if len(r.Devices) > 0 {
		// Each Set attaches a program; all attached must allow, so
		// repeated Sets can only narrow access.
		return attachDeviceProgram(m.dir, r.Devices)
	}
	return nil
}

func memMax(limit int64) string {
	if limit < 0 {
		return "max"
	}
	return strconv.FormatInt(limit, 10)
}

// cpuMax formats cpu.max: "$QUOTA $PERIOD" with "max" for no quota.
func cpuMax(quota *int64, period *uint64) string {
	q := "max"
	if quota != nil && *quota > 0 {
		q = strconv.FormatInt(*quota, 10)
	}
	p := uint64(100000)
	if period != nil && *period != 0 {
		p = *period
	}
	return q + " " + strconv.FormatUint(p, 10)
}

// sharesToWeight maps v1 cpu.shares (2..262144, default 1024) onto v2
// cpu.weight (1..10000, default 100) linearly, as runc and crun do.
func sharesToWeight(shares uint64) uint64 {
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// blkioToIOWeight maps blkio weight (10..1000) to io.weight (1..10000).
func blkioToIOWeight(w uint16) uint64 {
	v := uint64(min(max(w, 10), 1000))
	return 1 + (v-10)*9999/990
}

func (m *v2) OOMKilled() (bool, error) {
	n, ok, err := readKey(m.dir, "memory.events", "oom_kill")
	if err != nil {
		return false, err
	}
	if !ok {
		return false, errUnsupported("oom_kill counter", errors.New("memory.events has no oom_kill"))
	}
	return n > 0, nil
}

func (m *v2) Stats() (Stats, error) {
	var s Stats
	var err error
	if exists(m.dir, "memory.current") {
		if s.MemoryUsage, err = readUint(m.dir, "memory.current"); err != nil {
			return s, err
		}
		if s.MemoryLimit, err = readUint(m.dir, "memory.max"); err != nil {
			return s, err
		}
	}
	if exists(m.dir, "pids.current") {
		if s.Pids, err = readUint(m.dir, "pids.current"); err != nil {
			return s, err
		}
	} else if pids, err := readPids(m.dir); err == nil {
		s.Pids = uint64(len(pids))
	}
	if usec, ok, err := readKey(m.dir, "cpu.stat", "usage_usec"); err == nil && ok {
		s.CPUUsageNs = usec * 1000
	}
	return s, nil
}

func (m *v2) Destroy() error { return killAndRemove(m.dir, true) }
