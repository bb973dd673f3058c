package volume

import (
	"fmt"
	"maps"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/mount"
)

// Spec is one mount a container asked for, parsed and checked but not yet
// resolved (volumes not created, host paths not looked at).
type Spec struct {
	Type   mount.Type // bind, volume or tmpfs
	Source string     // host path (bind), volume name (volume, "" for anonymous)
	Target string     // absolute path in the container
	// ReadOnly mounts read-only.
	ReadOnly bool
	// Mode is -v's third field as given ("ro", "z"...), shown by inspect.
	Mode string
	// Propagation of a bind ("" means rprivate).
	Propagation mount.Propagation
	// NonRecursive binds without the submounts (bind-nonrecursive).
	NonRecursive bool
	// NoCopy skips populating an empty volume from the image.
	NoCopy bool
	// Subpath mounts a directory inside the volume.
	Subpath string
	// CreateSource creates a missing host path (-v does, --mount does not).
	CreateSource bool
	// FromBind is true for -v specs (they differ from --mount in inspect).
	FromBind bool
	// Driver, DriverOpts and Labels describe a volume created for this mount.
	Driver     string
	DriverOpts map[string]string
	Labels     map[string]string
	// TmpfsOptions are the mount options of a tmpfs (size=, mode=...).
	TmpfsOptions []string
}

func errInvalidSpec(raw string) error {
	return errdefs.InvalidParameterf("invalid volume specification: '%s'", raw)
}

func errMountConfig(t mount.Type, format string, a ...any) error {
	return errdefs.InvalidParameterf("invalid mount config for type %q: %s", t, fmt.Sprintf(format, a...))
}

// ParseBind parses a -v (HostConfig.Binds) entry: "/host:/ctr[:mode]",
// "name:/ctr[:mode]" or "/ctr" (an anonymous volume). Modes are a comma
// list of ro|rw, z|Z, nocopy, a bind propagation and a consistency.
func ParseBind(raw string) (Spec, error) {
	parts := strings.Split(raw, ":")
	var src, dst, mode string
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		if validMode(parts[1]) {
			// "/foo:rw": a destination with a mode is not a volume.
			return Spec{}, errInvalidSpec(raw)
		}
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
		if !validMode(mode) {
			return Spec{}, errdefs.InvalidParameterf("invalid mode: %s", mode)
		}
	default:
		return Spec{}, errInvalidSpec(raw)
	}
	if len(parts) > 1 && src == "" || dst == "" {
		return Spec{}, errInvalidSpec(raw)
	}
	s := Spec{Type: mount.TypeVolume, Source: src, Target: dst, Mode: mode, FromBind: true}
	if strings.HasPrefix(src, "/") {
		s.Type = mount.TypeBind
		s.CreateSource = true
		s.Source = path.Clean(src)
	}
	for _, m := range strings.Split(mode, ",") {
		switch {
		case m == "ro":
			s.ReadOnly = true
		case m == "nocopy":
			s.NoCopy = true
		case isPropagation(m):
			s.Propagation = mount.Propagation(m)
		}
	}
	if err := checkTarget(s.Type, dst); err != nil {
		return Spec{}, fmt.Errorf("invalid volume specification: '%s': %w", raw, err)
	}
	s.Target = path.Clean(dst)
	switch s.Type {
	case mount.TypeBind:
		if s.NoCopy {
			return Spec{}, errdefs.InvalidParameterf("invalid mode: %s", mode)
		}
	case mount.TypeVolume:
		if s.Propagation != "" {
			return Spec{}, errdefs.InvalidParameterf("invalid mode: %s", mode)
		}
		if src != "" {
			if err := ValidateName(src); err != nil {
				return Spec{}, err
			}
		}
	}
	return s, nil
}

// validMode checks a -v mode list: each kind of option at most once.
func validMode(mode string) bool {
	if mode == "" {
		return false
	}
	var rw, label, prop, copyMode, consistency int
	for _, m := range strings.Split(mode, ",") {
		switch {
		case m == "rw" || m == "ro":
			rw++
		case m == "z" || m == "Z":
			label++
		case isPropagation(m):
			prop++
		case m == "nocopy":
			copyMode++
		case m == "consistent" || m == "cached" || m == "delegated":
			consistency++
		default:
			return false
		}
	}
	return rw <= 1 && label <= 1 && prop <= 1 && copyMode <= 1 && consistency <= 1
}

func isPropagation(m string) bool {
	for _, p := range mount.Propagations {
		if string(p) == m {
			return true
		}
	}
	return false
}

func checkTarget(t mount.Type, dst string) error {
	if dst == "" {
		return errMountConfig(t, "field Target must not be empty")
	}
	if !path.IsAbs(dst) {
		return errMountConfig(t, "invalid mount path: '%s' mount path must be absolute", dst)
	}
	if path.Clean(dst) == "/" {
		return errMountConfig(t, "invalid specification: destination can't be '/'")
	}
	return nil
}

// FromMount checks an API mount (HostConfig.Mounts, from --mount) the way
// Docker does and returns its spec. Whether a bind's source exists is the
// resolver's business.
func FromMount(m mount.Mount) (Spec, error) {
	t := m.Type
	if err := checkTarget(t, m.Target); err != nil {
		return Spec{}, err
	}
	s := Spec{Type: t, Source: m.Source, Target: path.Clean(m.Target), ReadOnly: m.ReadOnly}
	switch t {
	case mount.TypeBind:
		if m.Source == "" {
			return Spec{}, errMountConfig(t, "field Source must not be empty")
		}
		if !path.IsAbs(m.Source) {
			return Spec{}, errMountConfig(t, "invalid mount path: '%s' mount path must be absolute", m.Source)
		}
		if m.VolumeOptions != nil {
			return Spec{}, errMountConfig(t, "field VolumeOptions must not be specified")
		}
		if m.TmpfsOptions != nil {
			return Spec{}, errMountConfig(t, "field TmpfsOptions must not be specified")
		}
		s.Source = path.Clean(m.Source)
		if b := m.BindOptions; b != nil {
			if b.Propagation != "" && !isPropagation(string(b.Propagation)) {
				return Spec{}, errMountConfig(t, "invalid propagation mode: %s", b.Propagation)
			}
			s.Propagation = b.Propagation
			s.NonRecursive = b.NonRecursive
			s.CreateSource = b.CreateMountpoint
		}
	case mount.TypeVolume:
		if m.BindOptions != nil {
			return Spec{}, errMountConfig(t, "field BindOptions must not be specified")
		}
		if m.TmpfsOptions != nil {
			return Spec{}, errMountConfig(t, "field TmpfsOptions must not be specified")
		}
		if m.Source != "" {
			if err := ValidateName(m.Source); err != nil {
				return Spec{}, err
			}
		}
		if v := m.VolumeOptions; v != nil {
			s.NoCopy = v.NoCopy
			s.Labels = maps.Clone(v.Labels)
			if v.Subpath != "" {
				if m.Source == "" {
					return Spec{}, errMountConfig(t, "subpath cannot be used with anonymous volumes")
				}
				if err := checkSubpath(v.Subpath); err != nil {
					return Spec{}, errMountConfig(t, "%v", err)
				}
				s.Subpath = path.Clean(v.Subpath)
			}
			if d := v.DriverConfig; d != nil {
				s.Driver = d.Name
				s.DriverOpts = maps.Clone(d.Options)
			}
		}
	case mount.TypeTmpfs:
		if m.Source != "" {
			return Spec{}, errMountConfig(t, "field Source must not be specified")
		}
		if m.BindOptions != nil {
			return Spec{}, errMountConfig(t, "field BindOptions must not be specified")
		}
		if m.VolumeOptions != nil {
			return Spec{}, errMountConfig(t, "field VolumeOptions must not be specified")
		}
		opts, err := tmpfsOptions(m.TmpfsOptions)
		if err != nil {
			return Spec{}, errMountConfig(t, "%v", err)
		}
		s.TmpfsOptions = opts
	case "":
		return Spec{}, errdefs.InvalidParameterf("invalid mount config: must use either propagation mode \"rslave\" or \"rshared\" when mount source is within the daemon root, or a mount type")
	default:
		return Spec{}, errdefs.InvalidParameterf("mount type unknown: %q", t)
	}
	return s, nil
}

func checkSubpath(p string) error {
	if path.IsAbs(p) {
		return fmt.Errorf("subpath must be a relative path within the volume")
	}
	if c := path.Clean(p); c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Errorf("subpath must be a relative path within the volume")
	}
	return nil
}

// tmpfsOptions renders an API tmpfs mount's options as mount options.
func tmpfsOptions(o *mount.TmpfsOptions) ([]string, error) {
	if o == nil {
		return nil, nil
	}
	var out []string
	if o.SizeBytes < 0 {
		return nil, fmt.Errorf("invalid tmpfs size %d", o.SizeBytes)
	}
	if o.SizeBytes > 0 {
		out = append(out, "size="+strconv.FormatInt(o.SizeBytes, 10))
	}
	if o.Mode != 0 {
		out = append(out, "mode="+strconv.FormatUint(uint64(unixMode(o.Mode)), 8))
	}
	for _, kv := range o.Options {
		switch {
		case len(kv) == 1 && (kv[0] == "exec" || kv[0] == "noexec"):
			out = append(out, kv[0])
		case len(kv) == 2 && (kv[0] == "nr_inodes" || kv[0] == "uid" || kv[0] == "gid"):
			if _, err := strconv.ParseUint(kv[1], 10, 64); err != nil {
				return nil, fmt.Errorf("invalid tmpfs option %q", kv)
			}
			out = append(out, kv[0]+"="+kv[1])
		default:
			return nil, fmt.Errorf("unsupported tmpfs option %q", kv)
		}
	}
	return out, nil
}

// unixMode takes the docker CLI's raw octal bits (1777 arrives as 0o1777)
// as well as Go's os.FileMode special bits.
func unixMode(m os.FileMode) uint32 {
	u := uint32(m) & 0o7777
	if m&os.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// ParseTmpfs checks a --tmpfs (HostConfig.Tmpfs) entry and returns its
// mount options.
func ParseTmpfs(dst, opts string) ([]string, error) {
	if err := checkTarget(mount.TypeTmpfs, dst); err != nil {
		return nil, err
	}
	if opts == "" {
		return nil, nil
	}
	var out []string
	for _, o := range strings.Split(opts, ",") {
		k, v, hasValue := strings.Cut(o, "=")
		switch {
		case !hasValue && tmpfsFlags[k]:
		case hasValue && tmpfsDataKeys[k] && v != "":
		default:
			return nil, errdefs.InvalidParameterf("invalid tmpfs option %q for %s", o, dst)
		}
		out = append(out, o)
	}
	return out, nil
}

var tmpfsFlags = map[string]bool{
	"ro": true, "rw": true, "exec": true, "noexec": true, "suid": true, "nosuid": true, "dev": true, "nodev": true,
	"sync": true, "async": true, "atime": true, "noatime": true, "diratime": true, "nodiratime": true,
	"relatime": true, "norelatime": true, "strictatime": true, "nostrictatime": true, "tmpcopyup": true,
	"notmpcopyup": true, "defaults": true,
}

var tmpfsDataKeys = map[string]bool{"size": true, "mode": true, "uid": true, "gid": true, "nr_inodes": true, "nr_blocks": true, "mpol": true}

// ParseVolumesFrom parses a --volumes-from entry "container[:ro|rw]".
func ParseVolumesFrom(s string) (container string, readOnly *bool, err error) {
	name, mode, hasMode := strings.Cut(s, ":")
	if name == "" {
		return "", nil, errdefs.InvalidParameterf("invalid volumes-from specification: %q", s)
	}
	if !hasMode {
		return name, nil, nil
	}
	var ro *bool
	for _, m := range strings.Split(mode, ",") {
		switch m {
		case "ro", "rw":
			if ro != nil {
				return "", nil, errdefs.InvalidParameterf("invalid mode: %s", mode)
			}
			v := m == "ro"
			ro = &v
		case "z", "Z":
		default:
			return "", nil, errdefs.InvalidParameterf("invalid mode: %s", mode)
		}
	}
	return name, ro, nil
}
