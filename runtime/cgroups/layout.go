package cgroups

import (
	"errors"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// v1Controllers are the v1 hierarchies a container gets a directory in.
var v1Controllers = []string{"memory", "cpu", "cpuacct", "pids", "cpuset", "blkio", "devices", "freezer"}

// layout is where the cgroup hierarchies are mounted.
type layout struct {
	unified string            // cgroup2 mount point, "" if none
	v1      map[string]string // controller -> mount point
}

func detectLayout() (layout, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return layout{}, err
	}
	l := layout{v1: map[string]string{}}
	for _, m := range mounts {
		if m.FSType == "cgroup2" {
			// Prefer the conventional mount points when mounted twice.
			if l.unified == "" || m.Mountpoint == "/sys/fs/cgroup" || m.Mountpoint == "/sys/fs/cgroup/unified" {
				l.unified = m.Mountpoint
			}
			continue
		}
		for _, opt := range strings.Split(m.VFSOptions, ",") {
			for _, c := range v1Controllers {
				if opt == c {
					if _, seen := l.v1[c]; !seen {
						l.v1[c] = m.Mountpoint
					}
				}
			}
		}
	}
	if l.unified == "" && len(l.v1) == 0 {
		return layout{}, errors.New("cgroups: no cgroup filesystem mounted")
	}
	return l, nil
}
