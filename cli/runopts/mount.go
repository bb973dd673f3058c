package runopts

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
)

// ParseMount parses a --mount value, a CSV list of key=value fields:
// type (bind, volume, tmpfs; default volume), source|src,
// target|destination|dst, readonly|ro, consistency, bind-propagation,
// bind-nonrecursive, volume-nocopy, volume-subpath, volume-label,
// volume-driver, volume-opt, tmpfs-size, tmpfs-mode.
func ParseMount(value string) (mount.Mount, error) {
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return mount.Mount{}, err
	}
	m := mount.Mount{Type: mount.TypeVolume}
	volumeOpts := func() *mount.VolumeOptions {
		if m.VolumeOptions == nil {
			m.VolumeOptions = &mount.VolumeOptions{}
		}
		return m.VolumeOptions
	}
	bindOpts := func() *mount.BindOptions {
		if m.BindOptions == nil {
			m.BindOptions = &mount.BindOptions{}
		}
		return m.BindOptions
	}
	tmpfsOpts := func() *mount.TmpfsOptions {
		if m.TmpfsOptions == nil {
			m.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return m.TmpfsOptions
	}
	for _, field := range fields {
		key, val, hasValue := strings.Cut(field, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		if !hasValue {
			switch key {
			case "readonly", "ro", "volume-nocopy", "bind-nonrecursive":
				val = "true"
			default:
				return mount.Mount{}, fmt.Errorf("invalid field '%s' must be a key=value pair", field)
			}
		}
		parseBool := func() (bool, error) {
			switch strings.ToLower(val) {
			case "true", "1":
				return true, nil
			case "false", "0":
				return false, nil
			}
			return false, fmt.Errorf("invalid value for %s: %s", key, val)
		}
		var b bool
		switch key {
		case "type":
			m.Type = mount.Type(strings.ToLower(val))
		case "source", "src":
			m.Source = val
		case "target", "dst", "destination":
			m.Target = val
		case "readonly", "ro":
			if m.ReadOnly, err = parseBool(); err != nil {
				return mount.Mount{}, err
			}
		case "consistency":
			m.Consistency = mount.Consistency(strings.ToLower(val))
		case "bind-propagation":
			bindOpts().Propagation = mount.Propagation(strings.ToLower(val))
		case "bind-nonrecursive":
			if b, err = parseBool(); err != nil {
				return mount.Mount{}, err
			}
			bindOpts().NonRecursive = b
		case "volume-nocopy":
			if b, err = parseBool(); err != nil {
				return mount.Mount{}, err
			}
			volumeOpts().NoCopy = b
		case "volume-subpath":
			volumeOpts().Subpath = val
		case "volume-label":
			k, v, _ := strings.Cut(val, "=")
			vo := volumeOpts()
			if vo.Labels == nil {
				vo.Labels = map[string]string{}
			}
			vo.Labels[k] = v
		case "volume-driver":
			vo := volumeOpts()
			if vo.DriverConfig == nil {
				vo.DriverConfig = &mount.Driver{}
			}
			vo.DriverConfig.Name = val
		case "volume-opt":
			k, v, ok := strings.Cut(val, "=")
			if !ok {
				return mount.Mount{}, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			vo := volumeOpts()
			if vo.DriverConfig == nil {
				vo.DriverConfig = &mount.Driver{}
			}
			if vo.DriverConfig.Options == nil {
				vo.DriverConfig.Options = map[string]string{}
			}
			vo.DriverConfig.Options[k] = v
		case "tmpfs-size":
			n, err := units.RAMInBytes(val)
			if err != nil {
				return mount.Mount{}, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfsOpts().SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return mount.Mount{}, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfsOpts().Mode = os.FileMode(n)
		default:
			return mount.Mount{}, fmt.Errorf("unexpected key '%s' in '%s'", key, field)
		}
	}
	if m.Type == "" {
		return mount.Mount{}, fmt.Errorf("type is required")
	}
	if m.Target == "" {
		return mount.Mount{}, fmt.Errorf("target is required")
	}
	if m.VolumeOptions != nil && m.Type != mount.TypeVolume {
		return mount.Mount{}, fmt.Errorf("cannot mix 'volume-*' options with mount type '%s'", m.Type)
	}
	if m.BindOptions != nil && m.Type != mount.TypeBind {
		return mount.Mount{}, fmt.Errorf("cannot mix 'bind-*' options with mount type '%s'", m.Type)
	}
	if m.TmpfsOptions != nil && m.Type != mount.TypeTmpfs {
		return mount.Mount{}, fmt.Errorf("cannot mix 'tmpfs-*' options with mount type '%s'", m.Type)
	}
	return m, nil
}
