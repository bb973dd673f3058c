package runtime

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// capSet is a capability set as a bit mask (bit n = capability n).
type capSet uint64

// capByName maps "CAP_CHOWN" to its number, for every capability the
// capability package knows.
func capByName() map[string]int {
	m := map[string]int{}
	for _, c := range capability.List() {
		m["CAP_"+strings.ToUpper(c.String())] = int(c)
	}
	return m
}

// parseCaps turns names into a set. Names unknown here or beyond the
// kernel's last capability are ignored, as runc does.
func parseCaps(names []string, byName map[string]int, last int) capSet {
	var s capSet
	for _, n := range names {
		if c, ok := byName[strings.ToUpper(n)]; ok && c <= last {
			s |= 1 << uint(c)
		}
	}
	return s
}

// lastCap reads the kernel's highest capability number.
func lastCap() int {
	data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			return n
		}
	}
	return int(capability.CAP_CHECKPOINT_RESTORE)
}

// processCaps are the capability sets of the user process.
type processCaps struct {
	bounding, effective, permitted, inheritable, ambient capSet
	last                                                 int
}

func newProcessCaps(c *specs.LinuxCapabilities) *processCaps {
	if c == nil {
		// No capabilities section: the process gets none.
		return &processCaps{last: lastCap()}
	}
	byName := capByName()
	last := lastCap()
	return &processCaps{
		bounding:    parseCaps(c.Bounding, byName, last),
		effective:   parseCaps(c.Effective, byName, last),
		permitted:   parseCaps(c.Permitted, byName, last),
		inheritable: parseCaps(c.Inheritable, byName, last),
		ambient:     parseCaps(c.Ambient, byName, last),
		last:        last,
	}
}

// dropBounding removes from the calling thread's bounding set every
// capability not in the spec's. It needs CAP_SETPCAP, so it runs before
// the final capset.
func (p *processCaps) dropBounding() error {
	for c := 0; c <= p.last; c++ {
		if p.bounding&(1<<uint(c)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop bounding capability %d: %w", c, err)
		}
	}
	return nil
}

// apply sets the effective, permitted and inheritable sets of the calling
// thread, then raises the ambient ones.
func (p *processCaps) apply() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for i := 0; i < 2; i++ {
		shift := uint(32 * i)
		data[i].Effective = uint32(p.effective >> shift)
		data[i].Permitted = uint32(p.permitted >> shift)
		data[i].Inheritable = uint32(p.inheritable >> shift)
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for c := 0; c <= p.last; c++ {
		if p.ambient&(1<<uint(c)) == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return fmt.Errorf("raise ambient capability %d: %w", c, err)
		}
	}
	return nil
}
