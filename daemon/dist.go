package daemon

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/distribution"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/distribution/reference"
	eventtypes "github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client/pkg/streamformatter"
	"github.com/opencontainers/go-digest"
)

var _ api.DistributionBackend = (*Daemon)(nil)

// DistConfig configures registry access (daemon flags).
type DistConfig struct {
	// InsecureRegistries (--insecure-registry) are reached over plain HTTP.
	InsecureRegistries []string
	// Mirrors (--registry-mirror) are tried before Docker Hub.
	Mirrors []string
}

// distService is the daemon's registry client.
type distService struct {
	client *distribution.Client
}

func newDistService(cfg Config) *distService {
	return &distService{client: distribution.New(distribution.Options{
		InsecureRegistries: cfg.Dist.InsecureRegistries,
		Mirrors:            cfg.Dist.Mirrors,
		Log:                cfg.Log.With("component", "distribution"),
	})}
}

func (d *Daemon) distClient() *distribution.Client { return d.dist.client }

// PullImage implements api.DistributionBackend.
func (d *Daemon) PullImage(ctx context.Context, ref string, opts api.PullOptions, out io.Writer) error {
	auth, err := distribution.DecodeAuthHeader(opts.AuthHeader)
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	res, err := d.distClient().Pull(ctx, d.images, ref, distribution.PullOptions{Platform: opts.Platform, Auth: auth}, streamformatter.NewJSONProgressOutput(out, false))
	if err != nil {
		return err
	}
	named, _ := distribution.ParseReference(ref)
	d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionPull, reference.FamiliarString(named), map[string]string{"name": reference.FamiliarName(named)})
	_ = res
	return nil
}

// PushImage implements api.DistributionBackend.
func (d *Daemon) PushImage(ctx context.Context, ref string, opts api.PushOptions, out io.Writer) error {
	auth, err := distribution.DecodeAuthHeader(opts.AuthHeader)
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	if _, err := d.distClient().Push(ctx, d.images, ref, distribution.PushOptions{Auth: auth}, streamformatter.NewJSONProgressOutput(out, false)); err != nil {
		return err
	}
	d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionPush, familiar(ref), map[string]string{"name": familiar(ref)})
	return nil
}

// Login implements api.DistributionBackend.
func (d *Daemon) Login(ctx context.Context, a registry.AuthConfig) (string, error) {
	return d.distClient().Login(ctx, distribution.AuthConfig{
		Username: a.Username, Password: a.Password, Auth: a.Auth, ServerAddress: a.ServerAddress,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
	})
}

// SaveImages implements api.DistributionBackend.
func (d *Daemon) SaveImages(ctx context.Context, names []string, w io.Writer) error {
	return distribution.Save(ctx, d.images, names, w)
}

// LoadImages implements api.DistributionBackend.
func (d *Daemon) LoadImages(ctx context.Context, r io.Reader, quiet bool, out io.Writer) error {
	tmp := filepath.Join(d.cfg.DataRoot, "tmp")
	return distribution.Load(ctx, d.images, r, tmp, func(res distribution.LoadResult) {
		d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionLoad, res.ID.String(), nil)
		if len(res.Tags) == 0 {
			writeStreamLine(out, "Loaded image ID: "+res.ID.String()+"\n")
		}
		for _, t := range res.Tags {
			writeStreamLine(out, "Loaded image: "+t+"\n")
		}
	})
}

// writeStreamLine writes a {"stream": ...} message.
func writeStreamLine(out io.Writer, s string) {
	b := fmt.Appendf(nil, "{\"stream\":%q}\r\n", s)
	out.Write(b)
}

// ExportContainer implements api.DistributionBackend.
func (d *Daemon) ExportContainer(ctx context.Context, name string, w io.Writer) error {
	f, release, err := d.containerFS(ctx, name)
	if err != nil {
		return err
	}
	defer release()
	if err := archive.Tar(ctx, w, f.Root); err != nil {
		return fmt.Errorf("export %s: %w", name, err)
	}
	return nil
}

// PruneImages implements api.DistributionBackend.
func (d *Daemon) PruneImages(ctx context.Context, ef filters.Args) (*imagetypes.PruneReport, error) {
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
		t, err := parseUntil(ef.Get("until")[0])
		if err != nil {
			return nil, err
		}
		until = t
	}
	before, _, _ := d.images.DiskUsage(ctx)
	imgs, err := d.images.List(ctx)
	if err != nil {
		return nil, err
	}
	users := d.imageUsers()
	rep := &imagetypes.PruneReport{}
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
		res, err := d.ImageDelete(ctx, img.ID.String(), true, true)
		if err != nil {
			if errdefs.IsNotFound(err) || errdefs.IsConflict(err) {
				continue
			}
			return nil, err
		}
		rep.ImagesDeleted = append(rep.ImagesDeleted, res...)
	}
	after, _, _ := d.images.DiskUsage(ctx)
	if before > after {
		rep.SpaceReclaimed = uint64(before - after)
	}
	return rep, nil
}

func parseUntil(s string) (time.Time, error) {
	if dur, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-dur), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	var sec int64
	if _, err := fmt.Sscanf(s, "%d", &sec); err == nil {
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, errdefs.InvalidParameterf("invalid until filter %q", s)
}

// DiskUsage implements api.DistributionBackend: GET /system/df.
func (d *Daemon) DiskUsage(ctx context.Context, opts api.DiskUsageOptions) (*api.DiskUsage, error) {
	d.waitRemovals()
	want := func(t string) bool {
		if len(opts.Types) == 0 {
			return true
		}
		for _, x := range opts.Types {
			if x == t {
				return true
			}
		}
		return false
	}
	du := &api.DiskUsage{}
	if want("image") {
		layers, shared, err := d.images.DiskUsage(ctx)
		if err != nil {
			return nil, err
		}
		du.LayersSize = layers
		imgs, err := d.Images(ctx, true, filters.Args{})
		if err != nil {
			return nil, err
		}
		for i := range imgs {
			imgs[i].SharedSize = shared[digest.Digest(imgs[i].ID)]
		}
		du.Images = imgs
	}
	if want("container") {
		cs, err := d.Containers(ctx, true, 0, true, filters.Args{})
		if err != nil {
			return nil, err
		}
		du.Containers = cs
	}
	return du, nil
}
