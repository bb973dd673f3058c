package spec

import (
	"slices"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/sys/capability"
)

// defaultCaps is Docker's default capability set, in Docker's order.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// normalizeCaps upper-cases names, adds the CAP_ prefix, checks that each is
// a capability Linux knows, and reports whether "ALL" was among them.
func normalizeCaps(names []string) (caps []string, all bool, err error) {
	for _, n := range names {
		n = strings.ToUpper(strings.TrimSpace(n))
		if n == "ALL" || n == "CAP_ALL" {
			all = true
			continue
		}
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		if !knownCap(n) {
			return nil, false, errdefs.InvalidParameterf("unknown capability: %q", n)
		}
		if !slices.Contains(caps, n) {
			caps = append(caps, n)
		}
	}
	return caps, all, nil
}

func knownCap(name string) bool {
	for _, c := range capability.ListKnown() {
		if capName(c) == name {
			return true
		}
	}
	return false
}

// tweakCaps applies --privileged, --cap-add and --cap-drop to Docker's
// default set the way Docker does: privileged or add ALL gives every
// capability the host can grant (minus drops), drop ALL keeps only the adds.
func tweakCaps(all []string, adds, drops []string, privileged bool) ([]string, error) {
	if privileged {
		return slices.Clone(all), nil
	}
	capAdd, addAll, err := normalizeCaps(adds)
	if err != nil {
		return nil, err
	}
	capDrop, dropAll, err := normalizeCaps(drops)
	if err != nil {
		return nil, err
	}
	var caps []string
	switch {
	case addAll:
		for _, c := range all {
			if !slices.Contains(capDrop, c) {
				caps = append(caps, c)
			}
		}
	case dropAll:
		caps = capAdd
	default:
		for _, c := range defaultCaps {
			if !slices.Contains(capDrop, c) {
				caps = append(caps, c)
			}
		}
		for _, c := range capAdd {
			if !slices.Contains(caps, c) {
				caps = append(caps, c)
			}
		}
	}
	if caps == nil {
		caps = []string{}
	}
	return caps, nil
}
