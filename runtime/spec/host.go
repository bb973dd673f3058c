package spec

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// host is what Generate needs to know about the machine it runs on. Tests
// substitute their own.
type host struct {
	// boundingCaps is the host's capability bounding set: "all caps" for a
	// privileged container (a bounding set without e.g. CAP_SYS_RESOURCE
	// makes asking for it fail at exec time).
	boundingCaps func() []string
	// cgroupUnified reports a pure cgroup v2 host, where Docker gives each
	// container its own cgroup namespace.
	cgroupUnified func() bool
	// hardLimit returns this process's hard limit for an RLIMIT_* resource.
	hardLimit func(resource int) (uint64, bool)
	// devices lists the host's device nodes for privileged containers.
	devices func() []specs.LinuxDevice
}

func hostFacts() host {
	return host{
		boundingCaps:  hostBoundingCaps,
		cgroupUnified: hostCgroupUnified,
		hardLimit: func(resource int) (uint64, bool) {
			var rl unix.Rlimit
			if err := unix.Getrlimit(resource, &rl); err != nil {
				return 0, false
			}
			return rl.Max, true
		},
		devices: hostDevices,
	}
}

// hostBoundingCaps reads CapBnd of this process and names its bits.
func hostBoundingCaps() []string {
	mask := ^uint64(0)
	if f, err := os.Open("/proc/self/status"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if v, ok := strings.CutPrefix(s.Text(), "CapBnd:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
					mask = m
				}
			}
		}
		f.Close()
	}
	last, err := capability.LastCap()
	if err != nil {
		last = capability.ListKnown()[len(capability.ListKnown())-1]
	}
	var caps []string
	for _, c := range capability.ListKnown() {
		if c <= last && mask&(1<<uint(c)) != 0 {
			caps = append(caps, capName(c))
		}
	}
	return caps
}

func capName(c capability.Cap) string { return "CAP_" + strings.ToUpper(c.String()) }

func hostCgroupUnified() bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
}

// hostDevices walks /dev for character and block devices, skipping the
// per-container filesystems Docker skips too.
func hostDevices() []specs.LinuxDevice {
	var out []specs.LinuxDevice
	skipDirs := map[string]bool{"/dev/pts": true, "/dev/shm": true, "/dev/mqueue": true, "/dev/fd": true, "/dev/.lxc": true, "/dev/.lxd-mounts": true}
	_ = filepath.WalkDir("/dev", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if skipDirs[path] {
				return filepath.SkipDir
			}
			return nil
		}
		if path == "/dev/console" || path == "/dev/ptmx" {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return nil
		}
		var typ string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			typ = "c"
		case unix.S_IFBLK:
			typ = "b"
		default:
			return nil
		}
		mode := os.FileMode(st.Mode &^ unix.S_IFMT)
		uid, gid := st.Uid, st.Gid
		out = append(out, specs.LinuxDevice{
			Path:     path,
			Type:     typ,
			Major:    int64(unix.Major(st.Rdev)),
			Minor:    int64(unix.Minor(st.Rdev)),
			FileMode: &mode,
			UID:      &uid,
			GID:      &gid,
		})
		return nil
	})
	return out
}
