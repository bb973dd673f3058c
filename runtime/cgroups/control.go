package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// dirs returns the directories of the cgroup at path: the v2 one (or "")
// and the v1 ones by controller.
func dirs(path string) (v2dir string, v1 map[string]string, err error) {
	rel, err := cleanPath(path)
	if err != nil {
		return "", nil, err
	}
	l, err := detectLayout()
	if err != nil {
		return "", nil, err
	}
	v1 = map[string]string{}
	for ctrl, mnt := range l.v1 {
		v1[ctrl] = filepath.Join(mnt, rel)
	}
	if l.unified != "" {
		v2dir = filepath.Join(l.unified, rel)
	}
	return v2dir, v1, nil
}

// freezeTimeout bounds the wait for the kernel to freeze every task.
const freezeTimeout = 10 * time.Second

// Freeze freezes (frozen) or thaws every process of the cgroup at path,
// with the v1 freezer controller, else cgroup v2's cgroup.freeze, and
// waits until the kernel reports the new state.
func Freeze(path string, frozen bool) error {
	v2dir, v1, err := dirs(path)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(freezeTimeout)
	if d, ok := v1["freezer"]; ok && exists(d, "freezer.state") {
		want := "THAWED"
		if frozen {
			want = "FROZEN"
		}
		for {
			if err := writeFile(d, "freezer.state", want); err != nil {
				return err
			}
			state, err := readFile(d, "freezer.state")
			if err != nil {
				return err
			}
			if state == want {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("cgroups: %s: still %s", d, state)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if v2dir == "" || !exists(v2dir, "cgroup.freeze") {
		return errUnsupported("freezer", errors.New("neither the v1 freezer nor cgroup.freeze is available"))
	}
	want := "0"
	if frozen {
		want = "1"
	}
	if err := writeFile(v2dir, "cgroup.freeze", want); err != nil {
		return err
	}
	for {
		n, ok, err := readKey(v2dir, "cgroup.events", "frozen")
		if err != nil {
			return err
		}
		if !ok || strconv.FormatUint(n, 10) == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups: %s: freeze=%s not reached", v2dir, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// Procs lists the processes of the cgroup at path and its descendants.
func Procs(path string) ([]int, error) {
	v2dir, v1, err := dirs(path)
	if err != nil {
		return nil, err
	}
	var dir string
	for _, c := range []string{"pids", "memory", "cpu", "freezer", "devices"} {
		if d, ok := v1[c]; ok {
			dir = d
			break
		}
	}
	if dir == "" {
		dir = v2dir
	}
	if dir == "" {
		return nil, errors.New("cgroups: no hierarchy")
	}
	var pids []int
	err = filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() {
			return nil
		}
		ps, err := readPids(p)
		if err != nil {
			return err
		}
		pids = append(pids, ps...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cgroups: list processes of %s: %w", path, err)
	}
	return pids, nil
}

// BlkioEntry is one line of block I/O accounting.
type BlkioEntry struct {
	Major, Minor uint64
	Op           string // "read", "write" (lower case, as cgroup v2 reports it)
	Value        uint64
}

// Usage is a detailed snapshot of a cgroup, for docker stats.
type Usage struct {
	CPUTotalNs, CPUUserNs, CPUSystemNs uint64
	PercpuNs                           []uint64
	Throttle                           struct{ Periods, ThrottledPeriods, ThrottledNs uint64 }
	MemoryUsage, MemoryMaxUsage        uint64
	MemoryLimit                        uint64 // ^0 when unlimited
	MemoryStats                        map[string]uint64
	MemoryFailcnt                      uint64
	Pids, PidsLimit                    uint64
	IOBytes, IOOps                     []BlkioEntry
	V2                                 bool // figures from cgroup v2 (memory stats keys differ)
}

// userHz is the kernel's USER_HZ, the unit of cpuacct.stat.
const userHz = 100

// ReadUsage reads the cgroup at path's usage, from v1 controllers when
// present, else from cgroup v2.
func ReadUsage(path string) (Usage, error) {
	v2dir, v1, err := dirs(path)
	if err != nil {
		return Usage{}, err
	}
	if len(v1) > 0 {
		return readUsageV1(v1), nil
	}
	return readUsageV2(v2dir), nil
}

func readUsageV1(d map[string]string) Usage {
	var u Usage
	if dir, ok := d["cpuacct"]; ok {
		u.CPUTotalNs, _ = readUint(dir, "cpuacct.usage")
		if s, err := readFile(dir, "cpuacct.usage_percpu"); err == nil {
			for _, f := range strings.Fields(s) {
				n, _ := strconv.ParseUint(f, 10, 64)
				u.PercpuNs = append(u.PercpuNs, n)
			}
		}
		if v, ok, _ := readKey(dir, "cpuacct.stat", "user"); ok {
			u.CPUUserNs = v * (1e9 / userHz)
		}
		if v, ok, _ := readKey(dir, "cpuacct.stat", "system"); ok {
			u.CPUSystemNs = v * (1e9 / userHz)
		}
	}
	if dir, ok := d["cpu"]; ok {
		u.Throttle.Periods, _, _ = readKey(dir, "cpu.stat", "nr_periods")
		u.Throttle.ThrottledPeriods, _, _ = readKey(dir, "cpu.stat", "nr_throttled")
		u.Throttle.ThrottledNs, _, _ = readKey(dir, "cpu.stat", "throttled_time")
	}
	if dir, ok := d["memory"]; ok {
		u.MemoryUsage, _ = readUint(dir, "memory.usage_in_bytes")
		u.MemoryMaxUsage, _ = readUint(dir, "memory.max_usage_in_bytes")
		u.MemoryLimit, _ = readUint(dir, "memory.limit_in_bytes")
		u.MemoryFailcnt, _ = readUint(dir, "memory.failcnt")
		u.MemoryStats = readFlat(dir, "memory.stat")
	}
	if dir, ok := d["pids"]; ok {
		u.Pids, _ = readUint(dir, "pids.current")
		u.PidsLimit, _ = readUint(dir, "pids.max")
	}
	if dir, ok := d["blkio"]; ok {
		u.IOBytes = readBlkioV1(dir, "blkio.throttle.io_service_bytes_recursive")
		u.IOOps = readBlkioV1(dir, "blkio.throttle.io_serviced_recursive")
	}
	return u
}

func readUsageV2(dir string) Usage {
	u := Usage{V2: true}
	cpu := readFlat(dir, "cpu.stat")
	u.CPUTotalNs = cpu["usage_usec"] * 1000
	u.CPUUserNs = cpu["user_usec"] * 1000
	u.CPUSystemNs = cpu["system_usec"] * 1000
	u.Throttle.Periods = cpu["nr_periods"]
	u.Throttle.ThrottledPeriods = cpu["nr_throttled"]
	u.Throttle.ThrottledNs = cpu["throttled_usec"] * 1000
	u.MemoryUsage, _ = readUint(dir, "memory.current")
	u.MemoryMaxUsage, _ = readUint(dir, "memory.peak")
	u.MemoryLimit, _ = readUint(dir, "memory.max")
	u.MemoryStats = readFlat(dir, "memory.stat")
	u.Pids, _ = readUint(dir, "pids.current")
	u.PidsLimit, _ = readUint(dir, "pids.max")
	if b, err := os.ReadFile(filepath.Join(dir, "io.stat")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			var major, minor uint64
			if _, err := fmt.Sscanf(f[0], "%d:%d", &major, &minor); err != nil {
				continue
			}
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				n, _ := strconv.ParseUint(v, 10, 64)
				switch k {
				case "rbytes":
					u.IOBytes = append(u.IOBytes, BlkioEntry{major, minor, "read", n})
				case "wbytes":
					u.IOBytes = append(u.IOBytes, BlkioEntry{major, minor, "write", n})
				case "rios":
					u.IOOps = append(u.IOOps, BlkioEntry{major, minor, "read", n})
				case "wios":
					u.IOOps = append(u.IOOps, BlkioEntry{major, minor, "write", n})
				}
			}
		}
	}
	return u
}

// readFlat reads a "key value" per line file into a map (missing: empty).
func readFlat(dir, name string) map[string]uint64 {
	m := map[string]uint64{}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return m
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			m[k] = n
		}
	}
	return m
}

// readBlkioV1 reads "major:minor Op value" lines; the "Total" lines are skipped.
func readBlkioV1(dir, name string) []BlkioEntry {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil
	}
	var out []BlkioEntry
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		var major, minor uint64
		if _, err := fmt.Sscanf(f[0], "%d:%d", &major, &minor); err != nil {
			continue
		}
		n, _ := strconv.ParseUint(f[2], 10, 64)
		out = append(out, BlkioEntry{major, minor, strings.ToLower(f[1]), n})
	}
	return out
}
