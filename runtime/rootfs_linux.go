package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// prepareRoot sets up the container's mount namespace up to pivot_root:
// mounts private to the container, its root bind-mounted onto itself, the
// spec's mounts, and /dev when the spec gives one as tmpfs. The cgroup
// mounts (and any mount below one) come last, after waitCgroup: they show
// the container's own cgroup, which Start sets up meanwhile.
func prepareRoot(p *initPlan, waitCgroup func(*initPlan) error) error {
	if err := unix.Mount("", "/", "", uintptr(p.RootPropagation), ""); err != nil {
		return fmt.Errorf("set propagation of /: %w", err)
	}
	if err := unix.Mount(p.Root, p.Root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s: %w", p.Root, err)
	}
	var deferred []planMount
	for _, m := range p.Mounts {
		if m.Kind == mountKindCgroup || below(m.Dest, deferred) {
			deferred = append(deferred, m)
			continue
		}
		if err := mountOne(p.Root, m); err != nil {
			return err
		}
	}
	if p.DevTmpfs {
		if err := createDevices(p.Root, p.Devices); err != nil {
			return err
		}
		if err := devSymlinks(p.Root); err != nil {
			return err
		}
	}
	if err := waitCgroup(p); err != nil {
		return err
	}
	for _, m := range deferred {
		if err := mountOne(p.Root, m); err != nil {
			return err
		}
	}
	return nil
}

// below reports whether dest is at or under the destination of one of ms.
func below(dest string, ms []planMount) bool {
	dest = filepath.Clean(dest)
	for _, m := range ms {
		d := filepath.Clean(m.Dest)
		if dest == d || strings.HasPrefix(dest, d+"/") {
			return true
		}
	}
	return false
}

// mountOne performs one spec mount inside root. Its destination is resolved
// with every symlink kept inside root, so an image cannot redirect a mount
// onto the host.
func mountOne(root string, m planMount) error {
	dest, err := securejoin.SecureJoin(root, m.Dest)
	if err != nil {
		return fmt.Errorf("mount %s: %w", m.Dest, err)
	}
	flags := uintptr(m.Flags)
	switch m.Kind {
	case mountKindBind:
		if err := bindMount(m.Source, dest, flags); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Source, m.Dest, err)
		}
	case mountKindCgroup:
		if err := mountCgroup(dest, flags); err != nil {
			return fmt.Errorf("mount cgroup on %s: %w", m.Dest, err)
		}
	default:
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return fmt.Errorf("mount %s: %w", m.Dest, err)
		}
		if err := unix.Mount(m.Source, dest, m.Type, flags, m.Data); err != nil {
			return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.Type, m.Dest, err)
		}
	}
	for _, pr := range m.Propagation {
		if err := unix.Mount("", dest, "", uintptr(pr), ""); err != nil {
			return fmt.Errorf("mount %s: set propagation: %w", m.Dest, err)
		}
	}
	return nil
}

// bindMount binds src on dest (creating a file or directory to mount on),
// then applies the per-mount flags, which a bind mount ignores on creation.
func bindMount(src, dest string, flags uintptr) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := ensureMountpoint(dest, fi.IsDir()); err != nil {
		return err
	}
	if err := unix.Mount(src, dest, "", unix.MS_BIND|(flags&unix.MS_REC), ""); err != nil {
		return err
	}
	extra := flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	if extra == 0 {
		return nil
	}
	return remountBind(dest, extra)
}

// remountBind changes the flags of the bind mount at p, keeping the flags
// of the mount it came from that may be locked (nosuid, nodev, noexec...).
func remountBind(p string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return err
	}
	return unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|statfsMountFlags(st.Flags)|flags, "")
}

// statfsMountFlags converts statfs ST_* flags to the MS_* flags a bind
// remount must repeat (they may be locked). Most share their values, but
// not ST_RELATIME, which is MS_BIND's value.
func statfsMountFlags(st int64) uintptr {
	var fl uintptr
	for _, f := range statfsFlags {
		if st&f.st != 0 {
			fl |= f.ms
		}
	}
	return fl
}

var statfsFlags = []struct {
	st int64
	ms uintptr
}{
	{unix.ST_RDONLY, unix.MS_RDONLY}, {unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV},
	{unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME},
	{unix.ST_RELATIME, unix.MS_RELATIME},
}

func ensureMountpoint(dest string, dir bool) error {
	if dir {
		return os.MkdirAll(dest, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_RDONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		if errors.Is(err, unix.EISDIR) {
			return nil
		}
		return err
	}
	return f.Close()
}

// mountCgroup gives the container a view of its own cgroups. With a cgroup
// namespace on a unified host that is a fresh cgroup2 mount. Otherwise
// (v1, hybrid, or no cgroup namespace) it is a tmpfs holding one bind
// mount per hierarchy of the container's own cgroup directory, which is how
// runc presents it; a hierarchy that cannot be bound is left out.
func mountCgroup(dest string, flags uintptr) error {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	var st unix.Statfs_t
	unified := unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
	if unified {
		ns, _ := os.Readlink("/proc/thread-self/ns/cgroup")
		host, _ := os.Readlink("/proc/1/ns/cgroup")
		if ns != host {
			return unix.Mount("cgroup2", dest, "cgroup2", flags, "")
		}
	}
	if unified {
		own, err := ownCgroups()
		if err != nil {
			return err
		}
		src := filepath.Join("/sys/fs/cgroup", own[""])
		if err := unix.Mount(src, dest, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		return remountBind(dest, flags)
	}
	tmpfsFlags := flags &^ unix.MS_RDONLY
	if err := unix.Mount("tmpfs", dest, "tmpfs", tmpfsFlags, "mode=755"); err != nil {
		return err
	}
	own, err := ownCgroups()
	if err != nil {
		return err
	}
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return err
	}
	for _, cm := range mounts {
		if filepath.Dir(cm.Mountpoint) != "/sys/fs/cgroup" {
			continue
		}
		if cm.FSType != "cgroup" {
			// Hybrid: runc (and so Docker) shows only the v1 hierarchies.
			continue
		}
		key := v1HierarchyKey(cm.VFSOptions)
		cgPath, ok := own[key]
		if !ok {
			continue
		}
		rel, err := filepath.Rel(cm.Root, cgPath)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		src := filepath.Join(cm.Mountpoint, rel)
		target := filepath.Join(dest, filepath.Base(cm.Mountpoint))
		if err := os.Mkdir(target, 0o755); err != nil {
			continue
		}
		if unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, "") != nil {
			_ = os.Remove(target)
			continue
		}
	}
	// Co-mounted controllers have symlinks (cpu -> cpu,cpuacct).
	if entries, err := os.ReadDir("/sys/fs/cgroup"); err == nil {
		for _, e := range entries {
			if e.Type()&os.ModeSymlink == 0 {
				continue
			}
			if t, err := os.Readlink(filepath.Join("/sys/fs/cgroup", e.Name())); err == nil {
				_ = os.Symlink(t, filepath.Join(dest, e.Name()))
			}
		}
	}
	// One recursive mount_setattr makes the whole view read-only, rather
	// than a remount per hierarchy.
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	err = unix.MountSetattr(unix.AT_FDCWD, dest, unix.AT_RECURSIVE, attr)
	if err == nil {
		// The tmpfs itself stays writable, as runc leaves it; the
		// hierarchies in it are read-only.
		err = unix.MountSetattr(unix.AT_FDCWD, dest, 0, &unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY})
	}
	if errors.Is(err, unix.ENOSYS) {
		// Kernels before 5.12.
		subs, _ := os.ReadDir(dest)
		for _, e := range subs {
			if e.IsDir() {
				_ = remountBind(filepath.Join(dest, e.Name()), unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
			}
		}
		return remountBind(dest, unix.MS_RDONLY)
	}
	return err
}

// v1HierarchyKey names a v1 hierarchy the way /proc/self/cgroup lists it:
// its controllers (comma separated, in the kernel's order) or name=X.
func v1HierarchyKey(superOptions string) string {
	var keep []string
	for _, o := range strings.Split(superOptions, ",") {
		switch o {
		case "rw", "ro", "", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods", "memory_localevents", "memory_recursiveprot", "nsdelegate", "memory_hugetlb_accounting":
			continue
		}
		if strings.HasPrefix(o, "release_agent=") {
			continue
		}
		keep = append(keep, o)
	}
	return strings.Join(keep, ",")
}

// ownCgroups maps each hierarchy key of /proc/self/cgroup ("" for v2,
// "memory", "cpu,cpuacct", "name=systemd") to this process's path in it.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	own := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		own[parts[1]] = parts[2]
	}
	return own, sc.Err()
}

// defaultDevices are the devices every container gets (runtime-spec).
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// createDevices makes the default devices and the spec's ones in the
// container's /dev, with mknod or, where that is not allowed, by binding
// the host's device node.
func createDevices(root string, devs []planDevice) error {
	for _, d := range devs {
		dest, err := securejoin.SecureJoin(root, d.Path)
		if err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
		_ = unix.Unlink(dest)
		err = unix.Mknod(dest, uint32(d.Mode), int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
		if errors.Is(err, unix.EPERM) {
			if err := bindMount(d.Path, dest, 0); err != nil {
				return fmt.Errorf("device %s: bind from host: %w", d.Path, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
		if err := unix.Chown(dest, int(d.UID), int(d.GID)); err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
	}
	return nil
}

// devSymlinks creates the standard links in a fresh /dev.
func devSymlinks(root string) error {
	links := [][2]string{
		{"/proc/self/fd", "fd"},
		{"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"},
		{"pts/ptmx", "ptmx"},
	}
	dev := filepath.Join(root, "dev")
	for _, l := range links {
		if err := os.Symlink(l[0], filepath.Join(dev, l[1])); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("/dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// pivotRoot makes root the root of the mount namespace and detaches the
// old one, without needing a directory to put the old root in.
func pivotRoot(root string) error {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldRoot)
	newRoot, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newRoot)
	if err := unix.Fchdir(newRoot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	// The old root is now stacked under "."; detach it without letting the
	// unmount propagate to the host.
	if err := unix.Fchdir(oldRoot); err != nil {
		return err
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// maskPath hides p: /dev/null over a file, an empty read-only tmpfs over a
// directory. Missing paths are fine.
func maskPath(p string) error {
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	if fi.IsDir() {
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
	} else {
		err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	return nil
}

// readonlyPath makes p a read-only bind mount of itself.
func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("readonly %s: %w", p, err)
	}
	if err := remountBind(p, unix.MS_RDONLY); err != nil {
		return fmt.Errorf("readonly %s: %w", p, err)
	}
	return nil
}

// writeSysctl sets one sysctl through /proc/sys.
func writeSysctl(key, value string) error {
	p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("sysctl %s: %w", key, err)
	}
	return nil
}
