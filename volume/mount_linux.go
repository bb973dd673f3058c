package volume

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// validOptions are the local driver's options; "size" (an XFS project
// quota in Docker) is not supported.
var validOptions = map[string]bool{"type": true, "device": true, "o": true}

// requiredWith lists, for an option, the options it needs (Docker's rule).
var requiredWith = map[string][]string{
	"device": {"type"},
	"type":   {"device"},
	"o":      {"device", "type"},
}

func validateOptions(opts map[string]string) error {
	for k := range opts {
		if !validOptions[k] {
			return errdefs.InvalidParameterf("invalid option: %q", k)
		}
	}
	for k, needs := range requiredWith {
		if _, ok := opts[k]; !ok {
			continue
		}
		for _, n := range needs {
			if _, ok := opts[n]; !ok {
				return errdefs.InvalidParameterf("missing required option: %q", n)
			}
		}
	}
	if opts["type"] == "" && opts["device"] != "" || opts["type"] != "" && opts["device"] == "" {
		return errdefs.InvalidParameterf("missing required option: %q", "device")
	}
	flags, _ := splitMountOptions(opts["o"])
	if flags&unix.MS_BIND != 0 {
		if !strings.HasPrefix(opts["device"], "/") {
			return errdefs.InvalidParameterf("invalid device for bind-backed volume: %q must be an absolute path", opts["device"])
		}
	}
	return nil
}

var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"nodiratime": {false, unix.MS_NODIRATIME}, "relatime": {false, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME},
	"bind":        {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"defaults": {false, 0},
}

// splitMountOptions turns the "o" option into mount(2) flags and the
// filesystem's data string (the words that are not flags).
func splitMountOptions(o string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, w := range strings.Split(o, ",") {
		if w == "" {
			continue
		}
		if f, ok := mountFlags[w]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		data = append(data, w)
	}
	return flags, strings.Join(data, ",")
}

// mountData makes v's backing mount on its data directory (mount -t type
// -o o device _data), unless a previous daemon left it mounted.
func mountData(v *Volume) error {
	if mounted, err := mountinfo.Mounted(v.Mountpoint); err == nil && mounted {
		return nil
	}
	flags, data := splitMountOptions(v.Options["o"])
	typ, dev := v.Options["type"], v.Options["device"]
	if flags&unix.MS_BIND != 0 {
		if _, err := os.Stat(dev); err != nil {
			return fmt.Errorf("bind device: %w", err)
		}
		if err := unix.Mount(dev, v.Mountpoint, "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return fmt.Errorf("bind %s: %w", dev, err)
		}
		// A bind ignores the other flags until a remount.
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
			if err := unix.Mount("", v.Mountpoint, "", unix.MS_BIND|unix.MS_REMOUNT|rest, ""); err != nil {
				unix.Unmount(v.Mountpoint, unix.MNT_DETACH)
				return fmt.Errorf("remount %s: %w", dev, err)
			}
		}
		return nil
	}
	if typ == "none" {
		typ = ""
	}
	if err := unix.Mount(dev, v.Mountpoint, typ, flags, data); err != nil {
		return fmt.Errorf("mount %s (%s, %q): %w", dev, typ, v.Options["o"], err)
	}
	return nil
}

// unmountData undoes every mount stacked on dir; it fails if dir stays a
// mount point, so that callers never delete through a mount.
func unmountData(dir string) error {
	for range 8 {
		mounted, err := mountinfo.Mounted(dir)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !mounted {
			return nil
		}
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted", dir)
}
