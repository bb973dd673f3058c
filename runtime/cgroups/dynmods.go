package cgroups

import (
	"fmt"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// FavorDynMods turns on the favordynmods option of the host's cgroup
// hierarchy (cgroup2 when mounted, else the v1 ones), and reports whether
// it changed anything. Without it the kernel makes every move of a process
// into a cgroup wait for an RCU grace period (5 to 15 ms measured here),
// which is most of a container's start; with it a move takes under 0.1 ms,
// at the price of slightly dearer forks and exits. The option is global
// (one lock serves every hierarchy) and needs Linux 6.0 or later.
func FavorDynMods() (bool, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return false, fmt.Errorf("cgroups: favordynmods: %w", err)
	}
	var m *mountinfo.Info
	for _, c := range mounts {
		if c.FSType == "cgroup2" {
			m = c
			break
		}
		if m == nil {
			m = c
		}
	}
	if m == nil {
		return false, fmt.Errorf("cgroups: favordynmods: no cgroup filesystem mounted")
	}
	var data []string
	for _, o := range strings.Split(m.VFSOptions, ",") {
		switch o {
		case "favordynmods":
			return false, nil
		case "rw", "ro", "":
		default:
			data = append(data, o)
		}
	}
	data = append(data, "favordynmods")
	flags := uintptr(unix.MS_REMOUNT)
	for _, o := range strings.Split(m.Options, ",") {
		flags |= map[string]uintptr{
			"ro": unix.MS_RDONLY, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV,
			"noexec": unix.MS_NOEXEC, "relatime": unix.MS_RELATIME, "noatime": unix.MS_NOATIME,
		}[o]
	}
	if err := unix.Mount(m.Source, m.Mountpoint, m.FSType, flags, strings.Join(data, ",")); err != nil {
		return false, fmt.Errorf("cgroups: favordynmods on %s: %w", m.Mountpoint, err)
	}
	return true, nil
}
