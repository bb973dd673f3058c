package daemon

import (
	"bufio"
	"context"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"
)

// Info implements api.SystemBackend: GET /info.
func (d *Daemon) Info(ctx context.Context) (*system.Info, error) {
	info := &system.Info{
		ID:                 d.engineID(),
		Driver:             "overlay2",
		DriverStatus:       [][2]string{{"Backing Filesystem", "extfs"}, {"Supports d_type", "true"}},
		MemoryLimit:        true,
		SwapLimit:          true,
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		CPUShares:          true,
		CPUSet:             true,
		PidsLimit:          true,
		IPv4Forwarding:     true,
		NGoroutines:        goruntime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      cgroupVersion(),
		OSType:             "linux",
		Architecture:       machineArch(),
		IndexServerAddress: "https://index.docker.io/v1/",
		NCPU:               goruntime.NumCPU(),
		MemTotal:           memTotal(),
		DockerRootDir:      d.cfg.DataRoot,
		Labels:             []string{},
		ServerVersion:      d.cfg.Version,
		Runtimes:           map[string]system.RuntimeWithStatus{"berth": {}, "runc": {}},
		DefaultRuntime:     "berth",
		Swarm:              swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		LiveRestoreEnabled: true,
		Isolation:          "",
		SecurityOptions:    []string{"name=seccomp,profile=builtin"},
		Warnings:           []string{},
	}
	info.Plugins.Log = []string{"json-file", "none"}
	info.Plugins.Volume = []string{}
	info.Plugins.Network = []string{"host", "none"}
	if d.cfg.Runtime != "" {
		info.DefaultRuntime = d.cfg.Runtime
	}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		info.KernelVersion = unix.ByteSliceToString(uts.Release[:])
		info.Name = unix.ByteSliceToString(uts.Nodename[:])
	}
	info.OperatingSystem, info.OSVersion = osRelease()
	d.secInfo(info)
	for _, c := range d.containers.list() {
		c.mu.Lock()
		switch c.State.Status {
		case container.StateRunning, container.StateRestarting:
			info.ContainersRunning++
		case container.StatePaused:
			info.ContainersPaused++
		default:
			info.ContainersStopped++
		}
		c.mu.Unlock()
		info.Containers++
	}
	if imgs, err := d.images.List(ctx); err == nil {
		info.Images = len(imgs)
	}
	return info, nil
}

// Version implements api.SystemBackend: GET /version.
func (d *Daemon) Version(ctx context.Context) system.VersionResponse {
	var kernel string
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		kernel = unix.ByteSliceToString(uts.Release[:])
	}
	v := system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "berth"},
		Version:       d.cfg.Version,
		Os:            goruntime.GOOS,
		Arch:          goruntime.GOARCH,
		GoVersion:     goruntime.Version(),
		KernelVersion: kernel,
	}
	v.GitCommit, v.BuildTime = d.cfg.GitCommit, d.cfg.BuildTime
	if v.GitCommit == "" {
		v.GitCommit, v.BuildTime = buildVCS()
	}
	v.Components = []system.ComponentVersion{{
		Name:    "Engine",
		Version: d.cfg.Version,
		Details: map[string]string{
			"Os": goruntime.GOOS, "Arch": goruntime.GOARCH, "GoVersion": goruntime.Version(), "KernelVersion": kernel,
			"GitCommit": v.GitCommit, "BuildTime": v.BuildTime,
		},
	}}
	return v
}

// buildVCS returns the commit (short, "-dirty" when modified) and commit
// time Go recorded in the binary when it was built from a git checkout.
func buildVCS() (commit, built string) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", ""
	}
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
			if len(commit) > 7 {
				commit = commit[:7]
			}
		case "vcs.time":
			built = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && commit != "" {
		commit += "-dirty"
	}
	return commit, built
}

// engineID is a stable identifier kept in the data root.
func (d *Daemon) engineID() string {
	path := d.cfg.DataRoot + "/engine-id"
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b))
	}
	id := newID()
	os.WriteFile(path, []byte(id+"\n"), 0o600)
	return id
}

func cgroupVersion() string {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	return "1"
}

func machineArch() string {
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		return unix.ByteSliceToString(uts.Machine[:])
	}
	return goruntime.GOARCH
}

func memTotal() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		return int64(si.Totalram) * int64(si.Unit)
	}
	return 0
}

func osRelease() (name, version string) {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "Linux", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		}
		switch k {
		case "PRETTY_NAME":
			name = v
		case "VERSION_ID":
			version = v
		}
	}
	return name, version
}
