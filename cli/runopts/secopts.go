package runopts

import (
	"fmt"
	"path"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"
)

// secOptions are the isolation and resource flags of run/create beyond
// the basic ones: devices, sysctls, namespace modes, runtime, cpuset.
type secOptions struct {
	devices       []string
	sysctls       []string
	pid, ipc, uts string
	oomScoreAdj   int
	cpusetCpus    string
	cpusetMems    string
	runtime       string
	memoryRes     string
	cpuPeriod     int64
	cpuQuota      int64
	blkioWeight   uint16
	cgroupns      string
}

func (s *secOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&s.devices, "device", nil, "Add a host device to the container")
	fs.StringArrayVar(&s.sysctls, "sysctl", nil, "Sysctl options")
	fs.StringVar(&s.pid, "pid", "", "PID namespace to use")
	fs.StringVar(&s.ipc, "ipc", "", "IPC mode to use")
	fs.StringVar(&s.uts, "uts", "", "UTS namespace to use")
	fs.IntVar(&s.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fs.StringVar(&s.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&s.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&s.runtime, "runtime", "", "Runtime to use for this container")
	fs.StringVar(&s.memoryRes, "memory-reservation", "", "Memory soft limit")
	fs.Int64Var(&s.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&s.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.Uint16Var(&s.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fs.StringVar(&s.cgroupns, "cgroupns", "", `Cgroup namespace to use (host|private)`)
}

// apply fills hc from the flags, validating them as the docker CLI does.
func (s *secOptions) apply(hc *container.HostConfig) error {
	for _, d := range s.devices {
		dm, err := ParseDevice(d)
		if err != nil {
			return flagError(d, "--device", err)
		}
		hc.Devices = append(hc.Devices, dm)
	}
	if len(s.sysctls) > 0 {
		hc.Sysctls = map[string]string{}
		for _, kv := range s.sysctls {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || !namespacedSysctl(k) {
				return flagError(kv, "--sysctl", fmt.Errorf("sysctl '%s' is not allowed", kv))
			}
			hc.Sysctls[k] = v
		}
	}
	for _, m := range []struct{ flag, v string }{{"--pid", s.pid}, {"--ipc", s.ipc}, {"--uts", s.uts}} {
		ok := m.v == "" || m.v == "host" || strings.HasPrefix(m.v, "container:") && m.flag != "--uts" ||
			m.flag == "--ipc" && (m.v == "private" || m.v == "shareable" || m.v == "none")
		if !ok {
			return fmt.Errorf("%s: invalid %s mode", m.flag, strings.TrimPrefix(m.flag, "--"))
		}
	}
	hc.PidMode, hc.IpcMode, hc.UTSMode = container.PidMode(s.pid), container.IpcMode(s.ipc), container.UTSMode(s.uts)
	hc.CgroupnsMode = container.CgroupnsMode(s.cgroupns)
	hc.OomScoreAdj = s.oomScoreAdj
	hc.CpusetCpus, hc.CpusetMems = s.cpusetCpus, s.cpusetMems
	hc.Runtime = s.runtime
	if s.memoryRes != "" {
		v, err := units.RAMInBytes(s.memoryRes)
		if err != nil {
			return flagError(s.memoryRes, "--memory-reservation", err)
		}
		hc.MemoryReservation = v
	}
	hc.CPUPeriod, hc.CPUQuota, hc.BlkioWeight = s.cpuPeriod, s.cpuQuota, s.blkioWeight
	return nil
}

// namespacedSysctl is the docker CLI's check: only sysctls a container's
// own namespaces hold.
func namespacedSysctl(k string) bool {
	switch k {
	case "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
		"kernel.shmmni", "kernel.shm_rmid_forced", "kernel.domainname", "kernel.hostname":
		return true
	}
	return strings.HasPrefix(k, "net.") || strings.HasPrefix(k, "fs.mqueue.")
}

// ParseDevice parses --device host[:container][:permissions].
func ParseDevice(s string) (container.DeviceMapping, error) {
	parts := strings.Split(s, ":")
	dm := container.DeviceMapping{CgroupPermissions: "rwm"}
	switch len(parts) {
	case 3:
		if !validPerms(parts[2]) {
			return dm, fmt.Errorf("bad mode specified: %s", parts[2])
		}
		dm.CgroupPermissions = parts[2]
		dm.PathInContainer = parts[1]
	case 2:
		if validPerms(parts[1]) {
			dm.CgroupPermissions = parts[1]
		} else {
			dm.PathInContainer = parts[1]
		}
	case 1:
	default:
		return dm, fmt.Errorf("invalid device specification: %s", s)
	}
	dm.PathOnHost = parts[0]
	if dm.PathInContainer == "" {
		dm.PathInContainer = dm.PathOnHost
	}
	if !path.IsAbs(dm.PathInContainer) {
		return dm, fmt.Errorf("%s is not an absolute path", dm.PathInContainer)
	}
	return dm, nil
}

func validPerms(p string) bool {
	if p == "" || len(p) > 3 {
		return false
	}
	for _, c := range p {
		if !strings.ContainsRune("rwm", c) {
			return false
		}
	}
	return true
}
