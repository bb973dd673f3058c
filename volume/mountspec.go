package volume

import (
	"fmt"
	"path"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/mount"
)

// MountPoint is one mount of a container: a volume, a host path or a tmpfs,
// as given by -v, --mount, --tmpfs, --volumes-from or an image's VOLUME.
type MountPoint struct {
	Type         mount.Type        `json:"type"`
	Name         string            `json:"name,omitempty"`   // volume name ("" for a volume still to make)
	Source       string            `json:"source,omitempty"` // bind: host path
	Destination  string            `json:"destination"`
	RW           bool              `json:"rw"`
	Mode         string            `json:"mode,omitempty"` // -v's options as given
	Propagation  mount.Propagation `json:"propagation,omitempty"`
	NoCopy       bool              `json:"noCopy,omitempty"`
	Subpath      string            `json:"subpath,omitempty"`
	NonRecursive bool              `json:"nonRecursive,omitempty"`
	Tmpfs        string            `json:"tmpfs,omitempty"` // tmpfs mount data ("size=..,mode=..")
	CreateSource bool              `json:"createSource,omitempty"`
	// For a volume created on the fly.
	VolumeOptions map[string]string `json:"volumeOptions,omitempty"`
	VolumeLabels  map[string]string `json:"volumeLabels,omitempty"`
	// Anonymous is set on volumes made for this container.
	Anonymous bool `json:"anonymous,omitempty"`
}

func invalidSpec(spec string, err error) error {
	return errdefs.InvalidParameter(fmt.Errorf("invalid volume specification: '%s': %w", spec, err))
}

// ParseBind parses a -v value: "/host:/ctr[:opts]", "name:/ctr[:opts]" or
// "/ctr" (an anonymous volume). opts: ro, rw, z, Z, nocopy, a propagation,
// consistency words.
func ParseBind(spec string) (MountPoint, error) {
	parts := strings.Split(spec, ":")
	var src, dst, mode string
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		src, dst = parts[0], parts[1]
		if path.IsAbs(src) && isMode(dst) {
			src, dst, mode = "", src, dst // "/ctr:ro": an anonymous volume with a mode
		}
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
	default:
		return MountPoint{}, errdefs.InvalidParameterf("invalid volume specification: '%s'", spec)
	}
	if dst == "" {
		return MountPoint{}, errdefs.InvalidParameterf("invalid volume specification: '%s'", spec)
	}
	m := MountPoint{Destination: dst, RW: true, Mode: mode}
	switch {
	case src == "":
		m.Type = mount.TypeVolume
		m.Anonymous = true
	case path.IsAbs(src):
		m.Type = mount.TypeBind
		m.Source = path.Clean(src)
		m.CreateSource = true
	default:
		m.Type = mount.TypeVolume
		m.Name = src
	}
	if !path.IsAbs(dst) {
		return MountPoint{}, invalidSpec(spec, fmt.Errorf("invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", m.Type, dst))
	}
	if path.Clean(dst) == "/" {
		return MountPoint{}, invalidSpec(spec, fmt.Errorf("invalid mount config for type %q: invalid specification: destination can't be '/'", m.Type))
	}
	m.Destination = path.Clean(dst)
	if mode != "" {
		for _, o := range strings.Split(mode, ",") {
			switch o {
			case "ro":
				m.RW = false
			case "rw", "z", "Z", "consistent", "cached", "delegated":
			case "nocopy":
				if m.Type != mount.TypeVolume {
					return MountPoint{}, errdefs.InvalidParameterf("invalid mode: %s", mode)
				}
				m.NoCopy = true
			case "shared", "rshared", "slave", "rslave", "private", "rprivate":
				if m.Type != mount.TypeBind {
					return MountPoint{}, errdefs.InvalidParameterf("invalid mode: %s", mode)
				}
				m.Propagation = mount.Propagation(o)
			default:
				return MountPoint{}, errdefs.InvalidParameterf("invalid mode: %s", mode)
			}
		}
	}
	if m.Type == mount.TypeBind && m.Propagation == "" {
		m.Propagation = mount.PropagationRPrivate
	}
	return m, nil
}

func isMode(s string) bool {
	for _, o := range strings.Split(s, ",") {
		switch o {
		case "ro", "rw", "z", "Z", "nocopy", "consistent", "cached", "delegated",
			"shared", "rshared", "slave", "rslave", "private", "rprivate":
		default:
			return false
		}
	}
	return s != ""
}

// ParseMount checks a --mount (HostConfig.Mounts entry).
func ParseMount(m mount.Mount) (MountPoint, error) {
	bad := func(format string, a ...any) error {
		return errdefs.InvalidParameterf("invalid mount config for type %q: %s", m.Type, fmt.Sprintf(format, a...))
	}
	if m.Target == "" {
		return MountPoint{}, bad("field Target must not be empty")
	}
	if !path.IsAbs(m.Target) {
		return MountPoint{}, bad("invalid mount path: '%s' mount path must be absolute", m.Target)
	}
	if path.Clean(m.Target) == "/" {
		return MountPoint{}, bad("invalid specification: destination can't be '/'")
	}
	mp := MountPoint{Type: m.Type, Destination: path.Clean(m.Target), RW: !m.ReadOnly}
	switch m.Type {
	case mount.TypeBind:
		if m.Source == "" {
			return MountPoint{}, bad("field Source must not be empty")
		}
		if !path.IsAbs(m.Source) {
			return MountPoint{}, bad("invalid mount path: '%s' mount path must be absolute", m.Source)
		}
		if m.VolumeOptions != nil || m.TmpfsOptions != nil {
			return MountPoint{}, bad("field VolumeOptions and TmpfsOptions must not be specified")
		}
		mp.Source = path.Clean(m.Source)
		mp.Propagation = mount.PropagationRPrivate
		if o := m.BindOptions; o != nil {
			if o.Propagation != "" {
				switch o.Propagation {
				case mount.PropagationShared, mount.PropagationRShared, mount.PropagationSlave,
					mount.PropagationRSlave, mount.PropagationPrivate, mount.PropagationRPrivate:
				default:
					return MountPoint{}, bad("invalid propagation mode: %s", o.Propagation)
				}
				mp.Propagation = o.Propagation
			}
			mp.NonRecursive = o.NonRecursive
			mp.CreateSource = o.CreateMountpoint
		}
	case mount.TypeVolume:
		if m.BindOptions != nil || m.TmpfsOptions != nil {
			return MountPoint{}, bad("field BindOptions and TmpfsOptions must not be specified")
		}
		mp.Name = m.Source
		mp.Anonymous = m.Source == ""
		if o := m.VolumeOptions; o != nil {
			mp.NoCopy = o.NoCopy
			if o.Subpath != "" {
				if path.IsAbs(o.Subpath) || strings.HasPrefix(path.Clean(o.Subpath), "..") {
					return MountPoint{}, bad("subpath must be a relative path within the volume")
				}
				mp.Subpath = path.Clean(o.Subpath)
			}
			mp.VolumeLabels = o.Labels
			if o.DriverConfig != nil {
				if o.DriverConfig.Name != "" && o.DriverConfig.Name != Driver {
					return MountPoint{}, errdefs.NotFoundf("error looking up volume plugin %s: plugin %q not found", o.DriverConfig.Name, o.DriverConfig.Name)
				}
				mp.VolumeOptions = o.DriverConfig.Options
			}
		}
	case mount.TypeTmpfs:
		if m.Source != "" {
			return MountPoint{}, bad("field Source must not be specified")
		}
		if m.BindOptions != nil || m.VolumeOptions != nil {
			return MountPoint{}, bad("field BindOptions and VolumeOptions must not be specified")
		}
		data := []string{"nosuid", "nodev", "noexec"}
		if o := m.TmpfsOptions; o != nil {
			if o.SizeBytes < 0 {
				return MountPoint{}, bad("invalid tmpfs size %d", o.SizeBytes)
			}
			if o.SizeBytes > 0 {
				data = append(data, fmt.Sprintf("size=%dk", (o.SizeBytes+1023)/1024))
			}
			if o.Mode != 0 {
				data = append(data, fmt.Sprintf("mode=%o", o.Mode.Perm()|o.Mode&(1<<9)))
			}
		}
		mp.Tmpfs = strings.Join(data, ",")
	default:
		return MountPoint{}, errdefs.InvalidParameterf("mount type unknown: %q", m.Type)
	}
	return mp, nil
}

// ParseTmpfs parses a --tmpfs entry (HostConfig.Tmpfs: path -> options).
func ParseTmpfs(dst, opts string) (MountPoint, error) {
	if !path.IsAbs(dst) {
		return MountPoint{}, errdefs.InvalidParameterf("invalid mount config for type \"tmpfs\": invalid mount path: '%s' mount path must be absolute", dst)
	}
	if path.Clean(dst) == "/" {
		return MountPoint{}, errdefs.InvalidParameterf("invalid mount config for type \"tmpfs\": invalid specification: destination can't be '/'")
	}
	mp := MountPoint{Type: mount.TypeTmpfs, Destination: path.Clean(dst), RW: true}
	data := []string{"noexec", "nosuid", "nodev"}
	for _, o := range strings.Split(opts, ",") {
		switch {
		case o == "":
		case o == "ro":
			mp.RW = false
		case o == "rw":
		default:
			data = append(data, o)
		}
	}
	mp.Tmpfs = strings.Join(data, ",")
	return mp, nil
}
