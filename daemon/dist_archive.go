package daemon

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/distribution"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
	"github.com/opencontainers/go-digest"
)

// loadTmpDir is where load unpacks archives; leftovers of a killed
// daemon are removed at start.
func (c Config) loadTmpDir() string { return filepath.Join(c.DataRoot, "tmp") }

func cleanLoadTmp(cfg Config) {
	entries, _ := os.ReadDir(cfg.loadTmpDir())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "load-") {
			os.RemoveAll(filepath.Join(cfg.loadTmpDir(), e.Name()))
		}
	}
}

// ExportImages implements api.DistributionBackend (docker save).
func (d *Daemon) ExportImages(ctx context.Context, names []string, w io.Writer) error {
	if err := distribution.SaveImages(ctx, d.images, names, w); err != nil {
		return err
	}
	for _, n := range names {
		if img, err := d.images.Get(ctx, n); err == nil {
			d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionSave, img.ID.String(), map[string]string{"name": n})
		}
	}
	return nil
}

// LoadImages implements api.DistributionBackend (docker load).
func (d *Daemon) LoadImages(ctx context.Context, r io.Reader, quiet bool, out io.Writer) error {
	res, err := distribution.LoadImages(ctx, d.images, r, d.cfg.loadTmpDir(), distribution.NewProgress(out))
	for _, l := range res {
		d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionLoad, l.ID.String(), nil)
	}
	return err
}

// ExportContainer implements api.DistributionBackend (docker export).
func (d *Daemon) ExportContainer(ctx context.Context, name string, w io.Writer) error {
	c, err := d.containers.get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running := c.State.running()
	c.mu.Unlock()
	rootfs, err := d.images.MountRootfs(ctx, c.ID)
	if err != nil {
		return err
	}
	if !running {
		defer d.images.UnmountRootfs(context.WithoutCancel(ctx), c.ID)
	}
	if err := archive.Tar(ctx, w, rootfs); err != nil {
		return err
	}
	d.events.Publish(eventtypes.ContainerEventType, eventtypes.ActionExport, c.ID, nil)
	return nil
}

// ImagesPrune implements api.DistributionBackend: dangling images by
// default, every image no container uses with dangling=false.
func (d *Daemon) ImagesPrune(ctx context.Context, ef filters.Args) (*imagetypes.PruneReport, error) {
	if err := ef.Validate("dangling", "until", "label", "label!"); err != nil {
		return nil, err
	}
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
	before, err := d.images.Usage(ctx)
	if err != nil {
		return nil, err
	}
	imgs, err := d.images.List(ctx)
	if err != nil {
		return nil, err
	}
	users := d.imageUsers()
	rep := &imagetypes.PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{}}
	for _, img := range imgs {
		if users[img.ID] > 0 || (danglingOnly && len(img.RepoTags) > 0) {
			continue
		}
		if !until.IsZero() && !img.Created.Before(until) {
			continue
		}
		if !ef.MatchLabels("label", img.Config.Config.Labels) {
			continue
		}
		if ef.Has("label!") && ef.MatchLabels("label!", img.Config.Config.Labels) {
			continue
		}
		res, err := d.ImageDelete(ctx, img.ID.String(), true, true)
		if err != nil {
			if errdefs.IsNotFound(err) || errdefs.IsConflict(err) {
				continue
			}
			return nil, err
		}
		rep.ImagesDeleted = append(rep.ImagesDeleted, res...)
	}
	after, err := d.images.Usage(ctx)
	if err == nil && before.LayersSize > after.LayersSize {
		rep.SpaceReclaimed = uint64(before.LayersSize - after.LayersSize)
	}
	d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionPrune, "", map[string]string{"reclaimed": itoa(int64(rep.SpaceReclaimed))})
	return rep, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// SystemDiskUsage implements api.DistributionBackend (docker system df).
func (d *Daemon) SystemDiskUsage(ctx context.Context) (*api.DiskUsage, error) {
	usage, err := d.images.Usage(ctx)
	if err != nil {
		return nil, err
	}
	imgs, err := d.Images(ctx, true, filters.Args{})
	if err != nil {
		return nil, err
	}
	for i := range imgs {
		imgs[i].SharedSize = usage.Shared[digest.Digest(imgs[i].ID)]
	}
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].Created > imgs[j].Created })
	ctrs, err := d.Containers(ctx, true, 0, true, filters.Args{})
	if err != nil {
		return nil, err
	}
	if ctrs == nil {
		ctrs = []container.Summary{}
	}
	return &api.DiskUsage{
		LayersSize: usage.LayersSize,
		Images:     imgs,
		Containers: ctrs,
		Volumes:    []volume.Volume{},
		BuildCache: []build.CacheRecord{},
	}, nil
}
