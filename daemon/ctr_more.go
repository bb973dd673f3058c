package daemon

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/runtime/cgroups"
)

var _ api.ContainerCtrBackend = (*Daemon)(nil)

func (d *Daemon) containerCgroup(c *Container) string {
	return path.Join(d.cgroupParent(), c.ID)
}

// ContainerPause implements api.ContainerCtrBackend: it freezes every
// process of the container (cgroup freezer, v1 or v2).
func (d *Daemon) ContainerPause(ctx context.Context, name string) error {
	c, err := d.containers.get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.State.Status {
	case container.StatePaused:
		return errdefs.Conflictf("Container %s is already paused", c.ID)
	case container.StateRestarting:
		return errdefs.Conflictf("Container %s is restarting, wait until the container is running", c.ID)
	case container.StateRunning:
	default:
		return errdefs.Conflictf("Container %s is not running", c.ID)
	}
	if err := cgroups.Freeze(d.containerCgroup(c), true); err != nil {
		return fmt.Errorf("pause container %s: %w", c.ID, err)
	}
	c.State.Status = container.StatePaused
	if err := c.save(); err != nil {
		d.log.Error("save container state", "id", c.ID, "err", err)
	}
	d.containerEvent(c, eventtypes.ActionPause, nil)
	return nil
}

// ContainerUnpause implements api.ContainerCtrBackend.
func (d *Daemon) ContainerUnpause(ctx context.Context, name string) error {
	c, err := d.containers.get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.Status != container.StatePaused {
		return errdefs.Conflictf("Container %s is not paused", c.ID)
	}
	if err := cgroups.Freeze(d.containerCgroup(c), false); err != nil {
		return fmt.Errorf("unpause container %s: %w", c.ID, err)
	}
	c.State.Status = container.StateRunning
	if err := c.save(); err != nil {
		d.log.Error("save container state", "id", c.ID, "err", err)
	}
	d.containerEvent(c, eventtypes.ActionUnPause, nil)
	return nil
}

// thawAfterKill thaws a paused container that was sent SIGKILL: a frozen
// process only dies once thawed (Docker does the same).
func (d *Daemon) thawAfterKill(c *Container, sig syscall.Signal) {
	if sig != syscall.SIGKILL {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.Status != container.StatePaused {
		return
	}
	if err := cgroups.Freeze(d.containerCgroup(c), false); err != nil {
		d.log.Warn("thaw killed container", "id", c.ID, "err", err)
		return
	}
	c.State.Status = container.StateRunning
	c.save()
}

// ContainerTop implements api.ContainerCtrBackend: like Docker, it runs the
// host's ps with psArgs (default -ef) and keeps the container's processes.
func (d *Daemon) ContainerTop(ctx context.Context, name, psArgs string) (*container.TopResponse, error) {
	c, err := d.containers.get(name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	running := c.State.running()
	c.mu.Unlock()
	if !running {
		return nil, errdefs.Conflictf("Container %s is not running", c.ID)
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	pids, err := cgroups.Procs(d.containerCgroup(c))
	if err != nil {
		return nil, fmt.Errorf("top %s: %w", c.ID, err)
	}
	out, err := exec.CommandContext(ctx, "ps", strings.Fields(psArgs)...).Output()
	if err != nil {
		return nil, errdefs.InvalidParameterf("Error running ps: %v", err)
	}
	return parsePS(string(out), pids)
}

// parsePS keeps the lines of ps output whose PID column is in pids; the
// last column (the command) keeps its spaces.
func parsePS(out string, pids []int) (*container.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 {
		return nil, errdefs.InvalidParameterf("ps gave no output")
	}
	titles := strings.Fields(lines[0])
	pidCol := -1
	for i, t := range titles {
		if t == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return nil, errdefs.InvalidParameterf("Couldn't find PID field in ps output")
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	resp := &container.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= pidCol {
			continue
		}
		pid, err := strconv.Atoi(f[pidCol])
		if err != nil || !want[pid] {
			continue
		}
		if len(f) > len(titles) {
			// The command's own spaces: join what is past the last title.
			rest := strings.Join(f[len(titles)-1:], " ")
			f = append(f[:len(titles)-1], rest)
		}
		resp.Processes = append(resp.Processes, f)
	}
	return resp, nil
}

// ContainerStats implements api.ContainerCtrBackend: one sample, or a
// sample a second until ctx ends. Each carries the previous one as pre*.
func (d *Daemon) ContainerStats(ctx context.Context, name string, stream, oneShot bool, emit func(*container.StatsResponse) error) error {
	c, err := d.containers.get(name)
	if err != nil {
		return err
	}
	var prev *container.StatsResponse
	if !stream && !oneShot {
		// Docker's non-streamed answer has precpu_stats a second older.
		prev = d.statsSample(c)
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil
		}
	}
	for {
		s := d.statsSample(c)
		if prev != nil {
			s.PreRead = prev.Read
			s.PreCPUStats = prev.CPUStats
		}
		if err := emit(s); err != nil {
			return err
		}
		if !stream {
			return nil
		}
		prev = s
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil
		}
	}
}

// statsSample reads one sample; a stopped container gives zeros, as in Docker.
func (d *Daemon) statsSample(c *Container) *container.StatsResponse {
	c.mu.Lock()
	running := c.State.running()
	pid := c.State.Pid
	s := &container.StatsResponse{ID: c.ID, Name: c.Name, OSType: "linux", Read: time.Now().UTC()}
	c.mu.Unlock()
	s.BlkioStats = container.BlkioStats{
		IoServiceBytesRecursive: []container.BlkioStatEntry{}, IoServicedRecursive: []container.BlkioStatEntry{},
		IoQueuedRecursive: []container.BlkioStatEntry{}, IoServiceTimeRecursive: []container.BlkioStatEntry{},
		IoWaitTimeRecursive: []container.BlkioStatEntry{}, IoMergedRecursive: []container.BlkioStatEntry{},
		IoTimeRecursive: []container.BlkioStatEntry{}, SectorsRecursive: []container.BlkioStatEntry{},
	}
	if !running {
		s.Read = time.Time{}
		return s
	}
	u, err := cgroups.ReadUsage(d.containerCgroup(c))
	if err != nil {
		d.log.Debug("stats", "id", c.ID, "err", err)
		return s
	}
	s.CPUStats = container.CPUStats{
		CPUUsage: container.CPUUsage{
			TotalUsage: u.CPUTotalNs, PercpuUsage: u.PercpuNs,
			UsageInKernelmode: u.CPUSystemNs, UsageInUsermode: u.CPUUserNs,
		},
		SystemUsage: systemCPUUsage(),
		OnlineCPUs:  uint32(runtime.NumCPU()),
		ThrottlingData: container.ThrottlingData{
			Periods: u.Throttle.Periods, ThrottledPeriods: u.Throttle.ThrottledPeriods, ThrottledTime: u.Throttle.ThrottledNs,
		},
	}
	limit := u.MemoryLimit
	if host := hostMemory(); host > 0 && (limit == 0 || limit > host) {
		limit = host
	}
	s.MemoryStats = container.MemoryStats{
		Usage: u.MemoryUsage, MaxUsage: u.MemoryMaxUsage, Stats: u.MemoryStats, Failcnt: u.MemoryFailcnt, Limit: limit,
	}
	s.PidsStats = container.PidsStats{Current: u.Pids}
	if u.PidsLimit != 0 && u.PidsLimit != ^uint64(0) {
		s.PidsStats.Limit = u.PidsLimit
	}
	for _, e := range u.IOBytes {
		s.BlkioStats.IoServiceBytesRecursive = append(s.BlkioStats.IoServiceBytesRecursive, blkioEntry(e, u.V2))
	}
	for _, e := range u.IOOps {
		s.BlkioStats.IoServicedRecursive = append(s.BlkioStats.IoServicedRecursive, blkioEntry(e, u.V2))
	}
	if pid > 0 {
		s.Networks = netDev(pid)
	}
	return s
}

// blkioEntry names the operation as Docker does: v1's "Read"/"Write", v2's "read"/"write".
func blkioEntry(e cgroups.BlkioEntry, v2 bool) container.BlkioStatEntry {
	op := e.Op
	if !v2 && op != "" {
		op = strings.ToUpper(op[:1]) + op[1:]
	}
	return container.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: op, Value: e.Value}
}

// systemCPUUsage is the host's total CPU time in nanoseconds (/proc/stat),
// the denominator of docker stats' CPU %.
func systemCPUUsage() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 8 || fields[0] != "cpu" {
			continue
		}
		var ticks uint64
		for _, v := range fields[1:8] {
			n, _ := strconv.ParseUint(v, 10, 64)
			ticks += n
		}
		return ticks * (1e9 / 100)
	}
	return 0
}

// hostMemory is the host's total memory in bytes.
func hostMemory() uint64 {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// netDev reads the interfaces of the container's network namespace
// through its init's /proc/<pid>/net/dev; loopback is left out, as Docker
// reports the container's endpoints only.
func netDev(pid int) map[string]container.NetworkStats {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil
	}
	out := map[string]container.NetworkStats{}
	for _, line := range strings.Split(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if name == "lo" || len(f) < 16 {
			continue
		}
		n := make([]uint64, 16)
		for i := range n {
			n[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		out[name] = container.NetworkStats{
			RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11],
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
