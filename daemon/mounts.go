package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/volume"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MountPoint is one mount of a container: resolved at create (volumes
// created and referenced) and persisted in the container's record.
type MountPoint struct {
	Type         mount.Type
	Name         string `json:",omitempty"` // the volume
	Source       string `json:",omitempty"` // the host path of a bind
	Destination  string
	Mode         string `json:",omitempty"`
	RW           bool
	Propagation  mount.Propagation `json:",omitempty"`
	NonRecursive bool              `json:",omitempty"`
	Subpath      string            `json:",omitempty"`
	// CreateSource creates a missing bind source at start (-v's rule).
	CreateSource bool `json:",omitempty"`
	// CopyData populates an empty volume from the image at the next start.
	CopyData bool `json:",omitempty"`
	// Anonymous volumes go with the container on rm -v.
	Anonymous    bool     `json:",omitempty"`
	TmpfsOptions []string `json:",omitempty"`
	// FromTmpfsFlag marks --tmpfs mounts, which inspect does not list.
	FromTmpfsFlag bool `json:",omitempty"`

	// Used while resolving only: --mount's volume labels and driver
	// options, and whether the mount came from --volumes-from.
	specLabels, specOpts map[string]string
	other                bool
}

// setupMounts resolves the container's mounts (-v, --mount, --tmpfs,
// --volumes-from, the image's and the config's VOLUMEs): every spec is
// checked first, so a bad one fails the create with nothing made; then
// volumes are created or looked up and referenced by the container.
func (d *Daemon) setupMounts(ctx context.Context, c *Container, img *image.Image) error {
	hc, cfg := c.HostConfig, c.Config
	byDest := map[string]*MountPoint{}
	var order []string
	add := func(mp *MountPoint, user bool) error {
		if prev, ok := byDest[mp.Destination]; ok && user && !prev.fromOther() {
			return errdefs.InvalidParameterf("Duplicate mount point: %s", mp.Destination)
		}
		if _, ok := byDest[mp.Destination]; !ok {
			order = append(order, mp.Destination)
		}
		byDest[mp.Destination] = mp
		return nil
	}
	// --volumes-from first: the container's own mounts override them.
	for _, vf := range hc.VolumesFrom {
		name, ro, err := volume.ParseVolumesFrom(vf)
		if err != nil {
			return err
		}
		src, err := d.containers.get(name)
		if err != nil {
			return err
		}
		src.mu.Lock()
		mps := slices.Clone(src.MountPoints)
		src.mu.Unlock()
		for _, m := range mps {
			if m.Type == mount.TypeTmpfs {
				continue
			}
			cp := *m
			cp.CopyData = false
			cp.Anonymous = false // rm -v of this container must not take them
			cp.fromOtherContainer()
			if ro != nil {
				cp.RW = !*ro
			}
			if _, ok := byDest[cp.Destination]; !ok {
				order = append(order, cp.Destination)
			}
			byDest[cp.Destination] = &cp
		}
	}
	for _, b := range hc.Binds {
		s, err := volume.ParseBind(b)
		if err != nil {
			return err
		}
		if err := add(mountPointFromSpec(s), true); err != nil {
			return err
		}
	}
	for _, m := range hc.Mounts {
		s, err := volume.FromMount(m)
		if err != nil {
			return err
		}
		if s.Type == mount.TypeBind && !s.CreateSource {
			if _, err := os.Stat(s.Source); err != nil {
				return errdefs.InvalidParameterf("invalid mount config for type \"bind\": bind source path does not exist: %s", s.Source)
			}
		}
		if s.Type == mount.TypeVolume && s.Driver != "" && s.Driver != volume.LocalDriver {
			return errdefs.NotFoundf("error looking up volume plugin %s: plugin %q not found", s.Driver, s.Driver)
		}
		mp := mountPointFromSpec(s)
		if err := add(mp, true); err != nil {
			return err
		}
		mp.specLabels, mp.specOpts = s.Labels, s.DriverOpts
	}
	for dst, o := range hc.Tmpfs {
		opts, err := volume.ParseTmpfs(dst, o)
		if err != nil {
			return err
		}
		mp := &MountPoint{Type: mount.TypeTmpfs, Destination: path.Clean(dst), RW: true, TmpfsOptions: opts, FromTmpfsFlag: true}
		if err := add(mp, true); err != nil {
			return err
		}
	}
	// VOLUMEs of the image and of the config (-v /path from the docker
	// CLI) become anonymous volumes where nothing else is mounted.
	anon := slices.Sorted(mapKeys(cfg.Volumes))
	if img != nil {
		anon = append(anon, slices.Sorted(mapKeys(img.Config.Config.Volumes))...)
	}
	for _, dst := range anon {
		if !path.IsAbs(dst) {
			return errdefs.InvalidParameterf("invalid volume specification: '%s': invalid mount config for type \"volume\": invalid mount path: '%s' mount path must be absolute", dst, dst)
		}
		if _, ok := byDest[path.Clean(dst)]; ok {
			continue
		}
		add(&MountPoint{Type: mount.TypeVolume, Destination: path.Clean(dst), RW: true, CopyData: true}, false)
	}

	// Everything is valid: create and reference the volumes.
	var out []*MountPoint
	for _, dst := range order {
		mp := byDest[dst]
		if mp.Type != mount.TypeVolume {
			out = append(out, mp)
			continue
		}
		var err error
		if mp.fromOther() {
			err = d.volumes.Ref(mp.Name, c.ID)
		} else {
			err = d.createMountVolume(ctx, c.ID, mp)
		}
		if err != nil {
			d.releaseMountPoints(ctx, c.ID, out, true)
			return err
		}
		out = append(out, mp)
	}
	for _, mp := range out {
		mp.specLabels, mp.specOpts, mp.other = nil, nil, false
	}
	c.MountPoints = out
	return nil
}

// createMountVolume creates (or finds) the volume of mp and references it.
func (d *Daemon) createMountVolume(ctx context.Context, id string, mp *MountPoint) error {
	labels := mp.specLabels
	if mp.Name == "" {
		mp.Anonymous = true
		labels = map[string]string{volume.AnonymousLabel: ""}
		for k, v := range mp.specLabels {
			labels[k] = v
		}
	}
	v, created, err := d.volumes.Create(ctx, volume.CreateOptions{Name: mp.Name, Options: mp.specOpts, Labels: labels, Ref: id})
	if err != nil {
		return err
	}
	mp.Name = v.Name
	if created {
		d.volumeEvent(v.Name, eventtypes.ActionCreate, nil)
	}
	return nil
}

// fromOther / fromOtherContainer mark a mount taken from --volumes-from
// during setupMounts (its volume is referenced, never created).
func (mp *MountPoint) fromOther() bool    { return mp.other }
func (mp *MountPoint) fromOtherContainer() { mp.other = true }

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func mountPointFromSpec(s volume.Spec) *MountPoint {
	mp := &MountPoint{
		Type:         s.Type,
		Destination:  s.Target,
		RW:           !s.ReadOnly,
		Mode:         s.Mode,
		Propagation:  s.Propagation,
		NonRecursive: s.NonRecursive,
		Subpath:      s.Subpath,
		CreateSource: s.CreateSource,
		TmpfsOptions: s.TmpfsOptions,
	}
	switch s.Type {
	case mount.TypeBind:
		mp.Source = s.Source
		if mp.Propagation == "" {
			mp.Propagation = mount.PropagationRPrivate
		}
	case mount.TypeVolume:
		mp.Name = s.Source
		mp.CopyData = !s.NoCopy
		if mp.Mode == "" {
			mp.Mode = "z"
		}
	}
	return mp
}

// releaseMounts drops the container's references to its volumes and, with
// removeVolumes (rm -v, --rm), removes its anonymous volumes that no other
// container uses.
func (d *Daemon) releaseMounts(ctx context.Context, c *Container, removeVolumes bool) {
	c.mu.Lock()
	mps := slices.Clone(c.MountPoints)
	c.mu.Unlock()
	d.releaseMountPoints(ctx, c.ID, mps, removeVolumes)
}

func (d *Daemon) releaseMountPoints(ctx context.Context, id string, mps []*MountPoint, removeVolumes bool) {
	for _, mp := range mps {
		if mp.Type != mount.TypeVolume || mp.Name == "" {
			continue
		}
		d.volumes.Unref(mp.Name, id)
		if !removeVolumes || !mp.Anonymous {
			continue
		}
		err := d.volumes.Remove(ctx, mp.Name, false)
		switch {
		case err == nil:
			d.volumeEvent(mp.Name, eventtypes.ActionDestroy, nil)
		case errdefs.IsConflict(err), errdefs.IsNotFound(err):
		default:
			d.log.Warn("remove anonymous volume", "name", mp.Name, "err", err)
		}
	}
}

// containerMounts readies the container's mounts for a start and returns
// them as OCI mounts: volumes activated (backing mounts made) and
// populated from the image on first use, missing -v host paths created.
// Caller holds c.mu.
func (d *Daemon) containerMounts(c *Container, rootfs string) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, mp := range c.MountPoints {
		m := specs.Mount{Destination: mp.Destination}
		switch mp.Type {
		case mount.TypeTmpfs:
			m.Type, m.Source = "tmpfs", "tmpfs"
			m.Options = append([]string{"nosuid", "nodev", "noexec"}, mp.TmpfsOptions...)
			if !mp.RW {
				m.Options = append(m.Options, "ro")
			}
			out = append(out, m)
			continue
		case mount.TypeBind:
			if _, err := os.Stat(mp.Source); errors.Is(err, os.ErrNotExist) && mp.CreateSource {
				if err := os.MkdirAll(mp.Source, 0o755); err != nil {
					return nil, fmt.Errorf("create bind source %s: %w", mp.Source, err)
				}
			} else if err != nil {
				return nil, errdefs.InvalidParameterf("invalid mount config for type \"bind\": bind source path does not exist: %s", mp.Source)
			}
			m.Source = mp.Source
		case mount.TypeVolume:
			dir, err := d.volumes.Activate(mp.Name, c.ID)
			if err != nil {
				return nil, err
			}
			if mp.CopyData {
				if src, err := securejoin.SecureJoin(rootfs, mp.Destination); err == nil {
					if err := volume.CopyUp(src, dir); err != nil {
						return nil, fmt.Errorf("populate volume %s: %w", mp.Name, err)
					}
				}
				mp.CopyData = false // first use only; saved with the started state
			}
			m.Source = dir
			if mp.Subpath != "" {
				p, err := securejoin.SecureJoin(dir, mp.Subpath)
				if err != nil {
					return nil, err
				}
				if _, err := os.Stat(p); err != nil {
					return nil, errdefs.InvalidParameterf("cannot access path %s: %v", mp.Subpath, err)
				}
				m.Source = p
			}
			d.volumeEvent(mp.Name, eventtypes.Action("mount"), map[string]string{
				"container": c.ID, "destination": mp.Destination, "read/write": fmt.Sprint(mp.RW), "propagation": string(mp.Propagation),
			})
		}
		m.Type = "bind"
		m.Options = []string{"rbind"}
		if mp.NonRecursive {
			m.Options = []string{"bind"}
		}
		prop := string(mp.Propagation)
		if prop == "" {
			prop = string(mount.PropagationRPrivate)
		}
		m.Options = append(m.Options, prop)
		if !mp.RW {
			m.Options = append(m.Options, "ro")
		}
		out = append(out, m)
	}
	return out, nil
}

// deactivateMounts records that the container's run ended: volume backing
// mounts go with their last user.
func (d *Daemon) deactivateMounts(c *Container) {
	c.mu.Lock()
	mps := slices.Clone(c.MountPoints)
	c.mu.Unlock()
	for _, mp := range mps {
		if mp.Type == mount.TypeVolume {
			d.volumes.Deactivate(mp.Name, c.ID)
		}
	}
}

// restoreVolumes rebuilds the volume references (and, for running
// containers, the active mounts) from the restored containers, then
// undoes backing mounts nothing uses any more.
func (d *Daemon) restoreVolumes() {
	for _, c := range d.containers.list() {
		c.mu.Lock()
		running := c.State.running()
		for _, mp := range c.MountPoints {
			if mp.Type != mount.TypeVolume {
				continue
			}
			if err := d.volumes.Ref(mp.Name, c.ID); err != nil {
				d.log.Warn("container refers to a missing volume", "id", c.ID, "volume", mp.Name)
				continue
			}
			if running {
				d.volumes.Activate(mp.Name, c.ID)
			}
		}
		c.mu.Unlock()
	}
	d.volumes.Reconcile()
}

// inspectMounts is the container's Mounts array in inspect and ps.
func (d *Daemon) inspectMounts(c *Container) []container.MountPoint {
	out := []container.MountPoint{}
	for _, mp := range c.MountPoints {
		if mp.FromTmpfsFlag {
			continue
		}
		m := container.MountPoint{
			Type: mp.Type, Name: mp.Name, Source: mp.Source, Destination: mp.Destination,
			Mode: mp.Mode, RW: mp.RW, Propagation: mp.Propagation,
		}
		if mp.Type == mount.TypeVolume {
			m.Driver = volume.LocalDriver
			m.Source = path.Join(d.volumes.Root(), mp.Name, "_data")
			if mp.Subpath != "" {
				m.Source = path.Join(m.Source, mp.Subpath)
			}
		}
		out = append(out, m)
	}
	return out
}

// usesVolume is ps's volume filter: a mount's volume name or destination.
// Caller holds c.mu.
func usesVolume(c *Container, ef filters.Args) bool {
	if !ef.Has("volume") {
		return true
	}
	for _, want := range ef.Get("volume") {
		for _, mp := range c.MountPoints {
			if mp.Name == want || mp.Destination == want || (mp.Type == mount.TypeBind && mp.Source == want) {
				return true
			}
		}
	}
	return false
}
