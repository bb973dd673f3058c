package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/containerfs"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/volume"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	volumetypes "github.com/moby/moby/api/types/volume"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var _ api.VolumeBackend = (*Daemon)(nil)

func (d *Daemon) openVolumes() error {
	s, err := volume.Open(filepath.Join(d.cfg.DataRoot, "volumes"), d.log.With("component", "volume"))
	if err != nil {
		return err
	}
	d.volumes = s
	return nil
}

// resolveMounts works out a new container's mounts from its image's
// VOLUMEs, --volumes-from, -v, --mount and --tmpfs (later ones win on the
// same destination; two user mounts on one destination are an error) and
// creates the volumes they name. created lists the volumes made here, for
// the caller to remove if the create fails.
func (d *Daemon) resolveMounts(c *Container, img *image.Image) (created []string, err error) {
	hc := c.HostConfig
	byDest := map[string]volume.MountPoint{}
	user := map[string]bool{}
	add := func(m volume.MountPoint, fromUser bool) error {
		if fromUser && user[m.Destination] {
			return errdefs.InvalidParameterf("Duplicate mount point: %s", m.Destination)
		}
		user[m.Destination] = user[m.Destination] || fromUser
		byDest[m.Destination] = m
		return nil
	}
	for dst := range img.Config.Config.Volumes {
		add(volume.MountPoint{Type: mount.TypeVolume, Destination: filepath.Clean(dst), RW: true, Anonymous: true}, false)
	}
	for _, from := range hc.VolumesFrom {
		ref, mode, _ := strings.Cut(from, ":")
		src, err := d.containers.get(ref)
		if err != nil {
			return nil, err
		}
		if mode != "" && mode != "ro" && mode != "rw" {
			return nil, errdefs.InvalidParameterf("invalid mode for volumes-from: %s", mode)
		}
		src.mu.Lock()
		mps := append([]volume.MountPoint(nil), src.MountPoints...)
		src.mu.Unlock()
		for _, m := range mps {
			if m.Type == mount.TypeTmpfs {
				continue
			}
			m.Anonymous = false // the other container's, not this one's
			switch mode {
			case "ro":
				m.RW = false
			case "rw":
				m.RW = true
			}
			add(m, false)
		}
	}
	for _, b := range hc.Binds {
		m, err := volume.ParseBind(b)
		if err != nil {
			return nil, err
		}
		if err := add(m, true); err != nil {
			return nil, err
		}
	}
	for _, spec := range hc.Mounts {
		m, err := volume.ParseMount(spec)
		if err != nil {
			return nil, err
		}
		if m.Type == mount.TypeBind && !m.CreateSource {
			if _, err := os.Stat(m.Source); err != nil {
				return nil, errdefs.InvalidParameterf("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source)
			}
		}
		if err := add(m, true); err != nil {
			return nil, err
		}
	}
	for dst, o := range hc.Tmpfs {
		m, err := volume.ParseTmpfs(dst, o)
		if err != nil {
			return nil, err
		}
		if err := add(m, true); err != nil {
			return nil, err
		}
	}
	dests := make([]string, 0, len(byDest))
	for dst := range byDest {
		dests = append(dests, dst)
	}
	sort.Strings(dests) // parents before children
	undo := func() {
		for _, n := range created {
			d.volumes.Remove(n)
		}
	}
	var mps []volume.MountPoint
	for _, dst := range dests {
		m := byDest[dst]
		if m.Type == mount.TypeVolume && (m.Name == "" || m.VolumeOptions != nil || m.VolumeLabels != nil || m.Anonymous) {
			v, made, err := d.volumes.Create(m.Name, m.VolumeOptions, m.VolumeLabels)
			if err != nil {
				undo()
				return nil, err
			}
			m.Name = v.Name
			if made {
				created = append(created, v.Name)
				d.events.Publish(eventtypes.VolumeEventType, eventtypes.ActionCreate, v.Name, map[string]string{"driver": volume.Driver})
			}
		} else if m.Type == mount.TypeVolume {
			v, made, err := d.volumes.Create(m.Name, nil, nil)
			if err != nil {
				undo()
				return nil, err
			}
			if made {
				created = append(created, v.Name)
				d.events.Publish(eventtypes.VolumeEventType, eventtypes.ActionCreate, v.Name, map[string]string{"driver": volume.Driver})
			}
		}
		if m.Type == mount.TypeBind && m.CreateSource {
			// -v of a missing host path creates it, as Docker does.
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				undo()
				return nil, errdefs.InvalidParameterf("create bind source %s: %v", m.Source, err)
			}
		}
		mps = append(mps, m)
	}
	c.MountPoints = mps
	return created, nil
}

// volumeSpecMounts mounts the container's volumes and returns its mounts
// for the runtime spec; the first use of an empty volume gets a copy of
// what the image has at its mount point. Caller holds c.mu.
func (d *Daemon) volumeSpecMounts(c *Container, rootfs string) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range c.MountPoints {
		opts := []string{"rbind"}
		if m.NonRecursive {
			opts = []string{"bind"}
		}
		switch m.Type {
		case mount.TypeTmpfs:
			mo := []string{}
			if m.Tmpfs != "" {
				mo = strings.Split(m.Tmpfs, ",")
			}
			if !m.RW {
				mo = append(mo, "ro")
			}
			out = append(out, specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: mo})
			continue
		case mount.TypeBind:
			if _, err := os.Stat(m.Source); err != nil {
				return nil, errdefs.InvalidParameterf("error while creating mount source path '%s': %v", m.Source, err)
			}
			opts = append(opts, string(m.Propagation))
			if !m.RW {
				opts = append(opts, "ro")
			}
			out = append(out, specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: opts})
			continue
		}
		src, err := d.volumes.Mount(m.Name, c.ID)
		if err != nil {
			return nil, err
		}
		if !m.NoCopy && m.Subpath == "" && d.volumes.Empty(m.Name) {
			if err := copyImageContent(rootfs, m.Destination, src); err != nil {
				return nil, fmt.Errorf("copy image content into volume %s: %w", m.Name, err)
			}
		}
		if m.Subpath != "" {
			p, err := securejoin.SecureJoin(src, m.Subpath)
			if err != nil {
				return nil, err
			}
			if _, err := os.Stat(p); err != nil {
				return nil, errdefs.InvalidParameterf("cannot access path %s: %v", p, err)
			}
			src = p
		}
		opts = append(opts, "rprivate")
		if !m.RW {
			opts = append(opts, "ro")
		}
		out = append(out, specs.Mount{Destination: m.Destination, Type: "bind", Source: src, Options: opts})
	}
	return out, nil
}

// releaseVolumes ends the container's use of its volumes (a backed one is
// unmounted with its last user).
// MountPoints never change after create, so no lock is needed to read them.
func (d *Daemon) releaseVolumes(c *Container) {
	for _, m := range c.MountPoints {
		if m.Type == mount.TypeVolume {
			d.volumes.Unmount(m.Name, c.ID)
		}
	}
}

// copyImageContent copies what the container's root has at dst into an
// empty volume, keeping modes and owners (Docker's copy-up).
func copyImageContent(rootfs, dst, volPath string) error {
	src, err := securejoin.SecureJoin(rootfs, dst)
	if err != nil {
		return err
	}
	st, err := os.Lstat(src)
	if err != nil || !st.IsDir() {
		return nil // nothing there (or not a directory): nothing to copy
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.Tar(context.Background(), pw, src)) }()
	_, err = archive.ApplyTar(context.Background(), volPath, pr, archive.ApplyOptions{})
	pr.CloseWithError(err)
	if err != nil {
		return err
	}
	// The volume's root takes the image directory's owner and mode.
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		os.Lchown(volPath, int(sys.Uid), int(sys.Gid))
	}
	return os.Chmod(volPath, st.Mode().Perm())
}

// reattachVolumes registers a running container found on restore as a
// user of its volumes (backed ones are still mounted).
func (d *Daemon) reattachVolumes(c *Container) {
	for _, m := range c.MountPoints {
		if m.Type == mount.TypeVolume {
			if _, err := d.volumes.Mount(m.Name, c.ID); err != nil {
				d.log.Warn("reattach volume", "container", c.ID, "volume", m.Name, "err", err)
			}
		}
	}
}

// removeAnonymousVolumes removes the volumes made for c that no other
// container uses (docker rm -v, run --rm).
func (d *Daemon) removeAnonymousVolumes(c *Container) {
	for _, m := range c.MountPoints {
		if m.Type != mount.TypeVolume || !m.Anonymous {
			continue
		}
		if len(d.volumeUsers(m.Name)) > 0 {
			continue
		}
		if err := d.volumes.Remove(m.Name); err == nil {
			d.events.Publish(eventtypes.VolumeEventType, eventtypes.ActionDestroy, m.Name, map[string]string{"driver": volume.Driver})
		}
	}
}

// removeVolumes removes volumes made for a create that failed.
func (d *Daemon) removeVolumes(names []string) {
	for _, n := range names {
		d.volumes.Remove(n)
	}
}

// volumeUsers lists the containers that refer to volume name.
func (d *Daemon) volumeUsers(name string) []string {
	var ids []string
	for _, c := range d.containers.list() {
		for _, m := range c.MountPoints { // fixed at create: no lock needed
			if m.Type == mount.TypeVolume && m.Name == name {
				ids = append(ids, c.ID)
				break
			}
		}
	}
	return ids
}

// volumeFSMounts are the container's volumes and binds as docker cp sees
// them (tmpfs mounts live only in the running container).
func (d *Daemon) volumeFSMounts(c *Container) []containerfs.Mount {
	var out []containerfs.Mount
	for _, m := range c.MountPoints {
		switch m.Type {
		case mount.TypeBind:
			out = append(out, containerfs.Mount{Source: m.Source, Dest: m.Destination, ReadOnly: !m.RW})
		case mount.TypeVolume:
			src := d.volumes.Path(m.Name)
			if m.Subpath != "" {
				p, err := securejoin.SecureJoin(src, m.Subpath)
				if err != nil {
					continue
				}
				src = p
			}
			out = append(out, containerfs.Mount{Source: src, Dest: m.Destination, ReadOnly: !m.RW})
		}
	}
	return out
}

// apiMountPoints is the Mounts list of inspect and ps. Caller holds c.mu.
func (d *Daemon) apiMountPoints(c *Container) []container.MountPoint {
	out := []container.MountPoint{}
	for _, m := range c.MountPoints {
		mp := container.MountPoint{Type: m.Type, Destination: m.Destination, RW: m.RW, Mode: m.Mode, Propagation: m.Propagation}
		switch m.Type {
		case mount.TypeVolume:
			mp.Name, mp.Driver, mp.Source = m.Name, volume.Driver, d.volumes.Path(m.Name)
			if m.Mode == "" && !m.RW {
				mp.Mode = "ro"
			}
			if mp.Mode == "" {
				mp.Mode = "z"
			}
		case mount.TypeBind:
			mp.Source = m.Source
		}
		out = append(out, mp)
	}
	return out
}

// matchVolumeFilter is ps's volume= filter: a volume name or a mount
// destination. Caller holds c.mu.
func matchVolumeFilter(ef filters.Args, c *Container) bool {
	if !ef.Has("volume") {
		return true
	}
	for _, want := range ef.Get("volume") {
		for _, m := range c.MountPoints {
			if m.Name == want || m.Destination == want || (m.Type == mount.TypeBind && m.Source == want) {
				return true
			}
		}
	}
	return false
}

// VolumeCreate implements api.VolumeBackend.
func (d *Daemon) VolumeCreate(ctx context.Context, req volumetypes.CreateRequest) (*volumetypes.Volume, error) {
	if req.Driver != "" && req.Driver != volume.Driver {
		return nil, errdefs.NotFoundf("error looking up volume plugin %s: plugin %q not found", req.Driver, req.Driver)
	}
	v, made, err := d.volumes.Create(req.Name, req.DriverOpts, req.Labels)
	if err != nil {
		return nil, err
	}
	if made {
		d.events.Publish(eventtypes.VolumeEventType, eventtypes.ActionCreate, v.Name, map[string]string{"driver": volume.Driver})
	}
	return d.apiVolume(v, false), nil
}

func (d *Daemon) apiVolume(v *volume.Volume, usage bool) *volumetypes.Volume {
	out := &volumetypes.Volume{
		Name: v.Name, Driver: volume.Driver, Mountpoint: d.volumes.Path(v.Name), Scope: "local",
		CreatedAt: v.CreatedAt.Format(time.RFC3339), Labels: v.Labels, Options: v.Options,
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if usage {
		out.UsageData = &volumetypes.UsageData{Size: d.volumes.Size(v.Name), RefCount: int64(len(d.volumeUsers(v.Name)))}
	}
	return out
}

// VolumeInspect implements api.VolumeBackend.
func (d *Daemon) VolumeInspect(ctx context.Context, name string) (*volumetypes.Volume, error) {
	v, err := d.volumes.Get(name)
	if err != nil {
		return nil, err
	}
	return d.apiVolume(v, false), nil
}

// VolumeList implements api.VolumeBackend.
func (d *Daemon) VolumeList(ctx context.Context, ef filters.Args) (*volumetypes.ListResponse, error) {
	if err := ef.Validate("dangling", "driver", "label", "name"); err != nil {
		return nil, err
	}
	out := &volumetypes.ListResponse{Volumes: []volumetypes.Volume{}, Warnings: []string{}}
	for _, v := range d.volumes.List() {
		ok, err := d.matchVolume(v, ef)
		if err != nil {
			return nil, err
		}
		if ok {
			out.Volumes = append(out.Volumes, *d.apiVolume(v, false))
		}
	}
	return out, nil
}

func (d *Daemon) matchVolume(v *volume.Volume, ef filters.Args) (bool, error) {
	if ef.Has("dangling") {
		want := ef.Get("dangling")[0]
		if want != "true" && want != "false" && want != "1" && want != "0" {
			return false, invalidFilter("dangling", want)
		}
		dangling := len(d.volumeUsers(v.Name)) == 0
		if dangling != (want == "true" || want == "1") {
			return false, nil
		}
	}
	if ef.Has("driver") && !ef.ExactMatch("driver", volume.Driver) {
		return false, nil
	}
	if ef.Has("name") && !ef.Match("name", v.Name) {
		return false, nil
	}
	return ef.MatchLabels("label", v.Labels), nil
}

// VolumeRemove implements api.VolumeBackend.
func (d *Daemon) VolumeRemove(ctx context.Context, name string, force bool) error {
	if _, err := d.volumes.Get(name); err != nil {
		if force && errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	if users := d.volumeUsers(name); len(users) > 0 {
		return errdefs.Conflictf("remove %s: volume is in use - [%s]", name, strings.Join(users, ", "))
	}
	if err := d.volumes.Remove(name); err != nil {
		return err
	}
	d.events.Publish(eventtypes.VolumeEventType, eventtypes.ActionDestroy, name, map[string]string{"driver": volume.Driver})
	return nil
}

// VolumesPrune implements api.VolumeBackend: unused anonymous volumes, or
// every unused one with all=true (API 1.42+ semantics).
func (d *Daemon) VolumesPrune(ctx context.Context, ef filters.Args) (*volumetypes.PruneReport, error) {
	if err := ef.Validate("label", "label!", "all"); err != nil {
		return nil, err
	}
	all := ef.Has("all") && (ef.Get("all")[0] == "true" || ef.Get("all")[0] == "1")
	rep := &volumetypes.PruneReport{VolumesDeleted: []string{}}
	for _, v := range d.volumes.List() {
		if (!all && !v.Anonymous()) || !ef.MatchLabels("label", v.Labels) ||
			(ef.Has("label!") && matchesAnyLabel(ef.Get("label!"), v.Labels)) || len(d.volumeUsers(v.Name)) > 0 {
			continue
		}
		size := d.volumes.Size(v.Name)
		if err := d.volumes.Remove(v.Name); err != nil {
			continue
		}
		d.events.Publish(eventtypes.VolumeEventType, eventtypes.ActionDestroy, v.Name, map[string]string{"driver": volume.Driver})
		rep.VolumesDeleted = append(rep.VolumesDeleted, v.Name)
		rep.SpaceReclaimed += uint64(size)
	}
	d.events.Publish(eventtypes.VolumeEventType, eventtypes.ActionPrune, "", map[string]string{"reclaimed": fmt.Sprint(rep.SpaceReclaimed)})
	return rep, nil
}

// volumeUsage is the Volumes part of GET /system/df.
func (d *Daemon) volumeUsage(ctx context.Context) []*volumetypes.Volume {
	var out []*volumetypes.Volume
	for _, v := range d.volumes.List() {
		out = append(out, d.apiVolume(v, true))
	}
	return out
}
