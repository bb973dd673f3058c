package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/berth-dev/berth/image/tarexport"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	volumetypes "github.com/moby/moby/api/types/volume"
	"github.com/opencontainers/go-digest"
)

var _ api.ImageArchiveBackend = (*Daemon)(nil)

// SaveImages implements api.ImageArchiveBackend.
func (d *Daemon) SaveImages(ctx context.Context, names []string, w io.Writer) error {
	for _, n := range names {
		if _, err := d.images.Get(ctx, n); err != nil {
			return err
		}
	}
	if err := tarexport.Save(ctx, d.images, names, w); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	for _, n := range names {
		d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionSave, n, map[string]string{"name": n})
	}
	return nil
}

// LoadImages implements api.ImageArchiveBackend.
func (d *Daemon) LoadImages(ctx context.Context, r io.Reader, loaded func(string)) error {
	tmp := filepath.Join(d.cfg.DataRoot, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	imgs, err := tarexport.Load(ctx, d.images, r, tmp)
	if err != nil {
		return err
	}
	for _, l := range imgs {
		if len(l.Tags) == 0 {
			loaded("Loaded image ID: " + l.ID.String())
		}
		for _, t := range l.Tags {
			loaded("Loaded image: " + t)
		}
		d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionLoad, l.ID.String(), nil)
	}
	return nil
}

// ExportContainer implements api.ImageArchiveBackend: the container's
// root filesystem (volumes and binds excluded, as Docker does).
func (d *Daemon) ExportContainer(ctx context.Context, name string, w io.Writer) error {
	c, err := d.containers.get(name)
	if err != nil {
		return err
	}
	root, err := d.images.MountRootfs(ctx, c.ID)
	if err != nil {
		return err
	}
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.State.running() && !c.removing {
			d.images.UnmountRootfs(context.WithoutCancel(ctx), c.ID)
		}
	}()
	if err := archive.Tar(ctx, w, root); err != nil {
		return fmt.Errorf("export %s: %w", name, err)
	}
	d.containerEvent(c, eventtypes.ActionExport, nil)
	return nil
}

// ImagesPrune implements api.ImageArchiveBackend: unused dangling images,
// or every unused image with dangling=false.
func (d *Daemon) ImagesPrune(ctx context.Context, ef filters.Args) (*imagetypes.PruneReport, error) {
	if err := ef.Validate("dangling", "label", "label!", "until"); err != nil {
		return nil, err
	}
	d.waitRemovals()
	danglingOnly := true
	if v, set, err := ef.Bool("dangling"); err != nil {
		return nil, err
	} else if set {
		danglingOnly = v
	}
	var until time.Time
	if ef.Has("until") {
		t, err := parseTimestamp(ef.Get("until")[0], time.Now())
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		until = t
	}
	users := d.imageUsers()
	imgs, err := d.images.List(ctx)
	if err != nil {
		return nil, err
	}
	rep := &imagetypes.PruneReport{}
	for _, img := range imgs {
		labels := img.Config.Config.Labels
		if users[img.ID] > 0 || (danglingOnly && len(img.RepoTags) > 0) || !ef.MatchLabels("label", labels) ||
			(ef.Has("label!") && matchesAnyLabel(ef.Get("label!"), labels)) || (!until.IsZero() && !img.Created.Before(until)) {
			continue
		}
		res, err := d.images.Delete(ctx, img.ID.String(), true, true, func(digest.Digest) bool { return false })
		if err != nil {
			continue
		}
		for _, r := range res {
			if r.Untagged != "" {
				rep.ImagesDeleted = append(rep.ImagesDeleted, imagetypes.DeleteResponse{Untagged: familiar(r.Untagged)})
			} else {
				rep.ImagesDeleted = append(rep.ImagesDeleted, imagetypes.DeleteResponse{Deleted: r.Deleted})
				d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionDelete, r.Deleted, nil)
			}
		}
		rep.SpaceReclaimed += uint64(img.Size)
	}
	d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionPrune, "", map[string]string{"reclaimed": fmt.Sprint(rep.SpaceReclaimed)})
	return rep, nil
}

// diskUsage is GET /system/df's answer for API 1.50.
type diskUsage struct {
	LayersSize int64
	Images     []imagetypes.Summary
	Containers []container.Summary
	Volumes    []volumetypes.Volume
	BuildCache []build.CacheRecord
}

// DiskUsage implements api.ImageArchiveBackend.
func (d *Daemon) DiskUsage(ctx context.Context, types []string) (any, error) {
	want := func(t string) bool {
		if len(types) == 0 {
			return true
		}
		for _, x := range types {
			if x == t {
				return true
			}
		}
		return false
	}
	d.waitRemovals()
	du := &diskUsage{Images: []imagetypes.Summary{}, Containers: []container.Summary{}, Volumes: []volumetypes.Volume{}, BuildCache: []build.CacheRecord{}}
	if want("image") {
		imgs, err := d.Images(ctx, false, filters.Args{})
		if err != nil {
			return nil, err
		}
		users := d.imageUsers()
		for _, img := range imgs {
			img.Containers = int64(users[digest.Digest(img.ID)])
			du.LayersSize += img.Size
			du.Images = append(du.Images, img)
		}
	}
	if want("container") {
		cs, err := d.Containers(ctx, true, 0, true, filters.Args{})
		if err != nil {
			return nil, err
		}
		du.Containers = cs
	}
	if want("volume") {
		for _, v := range d.volumeUsage(ctx) {
			du.Volumes = append(du.Volumes, *v)
		}
	}
	return du, nil
}
