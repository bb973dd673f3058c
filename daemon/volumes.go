package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/berth-dev/berth/volume"
	eventtypes "github.com/moby/moby/api/types/events"
	volumetypes "github.com/moby/moby/api/types/volume"
)

var _ api.VolumeBackend = (*Daemon)(nil)

// openVolumes opens the local volume driver under <data-root>/volumes.
func openVolumes(cfg Config) (*volume.Store, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return volume.Open(filepath.Join(cfg.DataRoot, "volumes"), log.With("component", "volume"))
}

// VolumeCreate implements api.VolumeBackend.
func (d *Daemon) VolumeCreate(ctx context.Context, req volumetypes.CreateRequest) (*volumetypes.Volume, error) {
	v, created, err := d.volumes.Create(ctx, volume.CreateOptions{
		Name: req.Name, Driver: req.Driver, Options: req.DriverOpts, Labels: req.Labels,
	})
	if err != nil {
		return nil, err
	}
	if created {
		d.volumeEvent(v.Name, eventtypes.ActionCreate, nil)
	}
	return apiVolume(v), nil
}

// VolumeInspect implements api.VolumeBackend.
func (d *Daemon) VolumeInspect(ctx context.Context, name string) (*volumetypes.Volume, error) {
	v, err := d.volumes.Get(name)
	if err != nil {
		return nil, err
	}
	return apiVolume(v), nil
}

// Volumes implements api.VolumeBackend: filters dangling, name, driver, label.
func (d *Daemon) Volumes(ctx context.Context, ef filters.Args) ([]*volumetypes.Volume, error) {
	if err := ef.Validate("dangling", "name", "driver", "label"); err != nil {
		return nil, err
	}
	dangling, danglingSet, err := ef.Bool("dangling")
	if err != nil {
		return nil, err
	}
	out := []*volumetypes.Volume{}
	for _, v := range d.volumes.List() {
		if danglingSet && (d.volumes.RefCount(v.Name) == 0) != dangling {
			continue
		}
		if !ef.Match("name", v.Name) || !ef.ExactMatch("driver", v.Driver) || !ef.MatchLabels("label", v.Labels) {
			continue
		}
		out = append(out, apiVolume(v))
	}
	return out, nil
}

// VolumeRemove implements api.VolumeBackend: a volume in use is a conflict.
func (d *Daemon) VolumeRemove(ctx context.Context, name string, force bool) error {
	if err := d.volumes.Remove(ctx, name, force); err != nil {
		return err
	}
	d.volumeEvent(name, eventtypes.ActionDestroy, nil)
	return nil
}

// VolumesPrune implements api.VolumeBackend: removes unused volumes, only
// anonymous ones unless the filter all=true is given (API >= 1.42; the
// route adds all=true for older clients). Filters: label, label!, all.
func (d *Daemon) VolumesPrune(ctx context.Context, ef filters.Args) (*volumetypes.PruneReport, error) {
	if err := ef.Validate("label", "label!", "all"); err != nil {
		return nil, err
	}
	all, _, err := ef.Bool("all")
	if err != nil {
		return nil, err
	}
	report := &volumetypes.PruneReport{}
	for _, v := range d.volumes.List() {
		if !all && !v.Anonymous() {
			continue
		}
		if !ef.MatchLabels("label", v.Labels) || (ef.Has("label!") && matchesAnyLabel(ef.Get("label!"), v.Labels)) {
			continue
		}
		if d.volumes.RefCount(v.Name) > 0 {
			continue
		}
		size, _ := volume.Size(v.Mountpoint)
		if err := d.volumes.Remove(ctx, v.Name, false); err != nil {
			if !errdefs.IsConflict(err) && !errdefs.IsNotFound(err) {
				d.log.Warn("prune volume", "name", v.Name, "err", err)
			}
			continue
		}
		d.volumeEvent(v.Name, eventtypes.ActionDestroy, nil)
		report.VolumesDeleted = append(report.VolumesDeleted, v.Name)
		report.SpaceReclaimed += uint64(size)
	}
	d.events.Publish(eventtypes.VolumeEventType, eventtypes.ActionPrune, "", map[string]string{"reclaimed": fmt.Sprint(report.SpaceReclaimed)})
	return report, nil
}

// volumeUsage is the Volumes part of GET /system/df: every volume with its
// size and how many containers use it.
func (d *Daemon) volumeUsage(ctx context.Context) ([]*volumetypes.Volume, error) {
	out := []*volumetypes.Volume{}
	for _, v := range d.volumes.List() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		size, err := volume.Size(v.Mountpoint)
		if err != nil {
			size = -1 // Docker's "unknown"
		}
		av := apiVolume(v)
		av.UsageData = &volumetypes.UsageData{Size: size, RefCount: int64(d.volumes.RefCount(v.Name))}
		out = append(out, av)
	}
	return out, nil
}

func (d *Daemon) volumeEvent(name string, action eventtypes.Action, extra map[string]string) {
	attrs := map[string]string{"driver": volume.LocalDriver}
	for k, v := range extra {
		attrs[k] = v
	}
	d.events.Publish(eventtypes.VolumeEventType, action, name, attrs)
}

func apiVolume(v *volume.Volume) *volumetypes.Volume {
	return &volumetypes.Volume{
		CreatedAt:  v.CreatedAt.Format(time.RFC3339),
		Driver:     v.Driver,
		Labels:     v.Labels,
		Mountpoint: v.Mountpoint,
		Name:       v.Name,
		Options:    v.Options,
		Scope:      "local",
	}
}
