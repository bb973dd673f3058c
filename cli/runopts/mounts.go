package runopts

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
)

// ParseMountFlag parses a --mount value the way the docker CLI does:
// comma-separated key=value fields (type, source, target, readonly,
// bind-*, volume-*, tmpfs-*).
func ParseMountFlag(value string) (mount.Mount, error) {
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return mount.Mount{}, fmt.Errorf("invalid argument %q for \"--mount\" flag: %w", value, err)
	}
	m := mount.Mount{Type: mount.TypeVolume}
	bindOpts := func() *mount.BindOptions {
		if m.BindOptions == nil {
			m.BindOptions = &mount.BindOptions{}
		}
		return m.BindOptions
	}
	volOpts := func() *mount.VolumeOptions {
		if m.VolumeOptions == nil {
			m.VolumeOptions = &mount.VolumeOptions{}
		}
		return m.VolumeOptions
	}
	tmpfsOpts := func() *mount.TmpfsOptions {
		if m.TmpfsOptions == nil {
			m.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return m.TmpfsOptions
	}
	boolVal := func(key, v string, set bool) (bool, error) {
		if !set {
			return true, nil
		}
		switch strings.ToLower(v) {
		case "1", "true":
			return true, nil
		case "0", "false":
			return false, nil
		}
		return false, fmt.Errorf("invalid value for %s: %s", key, v)
	}
	for _, field := range fields {
		key, val, hasVal := strings.Cut(field, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		switch key {
		case "readonly", "ro":
			if m.ReadOnly, err = boolVal(key, val, hasVal); err != nil {
				return mount.Mount{}, err
			}
			continue
		case "bind-nonrecursive":
			if bindOpts().NonRecursive, err = boolVal(key, val, hasVal); err != nil {
				return mount.Mount{}, err
			}
			continue
		case "volume-nocopy":
			if volOpts().NoCopy, err = boolVal(key, val, hasVal); err != nil {
				return mount.Mount{}, err
			}
			continue
		}
		if !hasVal {
			return mount.Mount{}, fmt.Errorf("invalid field '%s' must be a key=value pair", field)
		}
		switch key {
		case "type":
			m.Type = mount.Type(strings.ToLower(val))
		case "source", "src":
			m.Source = val
		case "target", "dst", "destination":
			m.Target = val
		case "consistency":
			m.Consistency = mount.Consistency(strings.ToLower(val))
		case "bind-propagation":
			bindOpts().Propagation = mount.Propagation(strings.ToLower(val))
		case "bind-create-src":
			if bindOpts().CreateMountpoint, err = boolVal(key, val, true); err != nil {
				return mount.Mount{}, err
			}
		case "volume-driver":
			volOpts().DriverConfig = &mount.Driver{Name: val}
		case "volume-subpath":
			volOpts().Subpath = val
		case "volume-label":
			k, v, _ := strings.Cut(val, "=")
			if volOpts().Labels == nil {
				volOpts().Labels = map[string]string{}
			}
			volOpts().Labels[k] = v
		case "volume-opt":
			k, v, _ := strings.Cut(val, "=")
			o := volOpts()
			if o.DriverConfig == nil {
				o.DriverConfig = &mount.Driver{}
			}
			if o.DriverConfig.Options == nil {
				o.DriverConfig.Options = map[string]string{}
			}
			o.DriverConfig.Options[k] = v
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
