package daemon

import (
	"context"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/berth-dev/berth/image"
	"github.com/distribution/reference"
	eventtypes "github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	"github.com/opencontainers/go-digest"
)

// ImportImage implements api.ImageBackend.
func (d *Daemon) ImportImage(ctx context.Context, src io.Reader, opts api.ImportOptions) (string, error) {
	ref := opts.Repo
	if ref != "" && opts.Tag != "" {
		ref += ":" + opts.Tag
	}
	if ref != "" {
		if _, err := reference.ParseNormalizedNamed(ref); err != nil {
			return "", errdefs.InvalidParameter(err)
		}
	}
	img, err := d.images.Import(ctx, src, image.ImportOptions{Ref: ref, Changes: opts.Changes, Message: opts.Message, Platform: opts.Platform})
	if err != nil {
		return "", err
	}
	d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionImport, img.ID.String(), nil)
	if ref != "" {
		d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionTag, img.ID.String(), map[string]string{"name": familiar(ref)})
	}
	return img.ID.String(), nil
}

// Images implements api.ImageBackend: GET /images/json.
func (d *Daemon) Images(ctx context.Context, all bool, ef filters.Args) ([]imagetypes.Summary, error) {
	if err := ef.Validate("before", "dangling", "label", "reference", "since", "until"); err != nil {
		return nil, err
	}
	dangling, danglingSet, err := ef.Bool("dangling")
	if err != nil {
		return nil, err
	}
	imgs, err := d.images.List(ctx)
	if err != nil {
		return nil, err
	}
	var before, since time.Time
	for key, dst := range map[string]*time.Time{"before": &before, "since": &since} {
		if ef.Has(key) {
			ref, err := d.images.Get(ctx, ef.Get(key)[0])
			if err != nil {
				return nil, err
			}
			*dst = ref.Created
		}
	}
	counts := d.imageUsers()
	out := []imagetypes.Summary{}
	for _, img := range imgs {
		labels := img.Config.Config.Labels
		if danglingSet && dangling != (len(img.RepoTags) == 0) {
			continue
		}
		if !ef.MatchLabels("label", labels) ||
			(!before.IsZero() && !img.Created.Before(before)) ||
			(!since.IsZero() && !img.Created.After(since)) {
			continue
		}
		tags := familiarAll(img.RepoTags)
		if ef.Has("reference") {
			tags = matchingRefs(ef.Get("reference"), img.RepoTags)
			if len(tags) == 0 {
				continue
			}
		}
		if labels == nil {
			labels = map[string]string{}
		}
		out = append(out, imagetypes.Summary{
			ID:          img.ID.String(),
			RepoTags:    tags,
			RepoDigests: familiarAll(img.RepoDigests),
			Created:     img.Created.Unix(),
			Size:        img.Size,
			Labels:      labels,
			Containers:  int64(counts[img.ID]),
			SharedSize:  -1,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created > out[j].Created })
	return out, nil
}

// matchingRefs returns the familiar tags of refs that match one of the
// reference filter patterns (path.Match on the familiar name, as Docker).
func matchingRefs(patterns, refs []string) []string {
	var out []string
	for _, r := range refs {
		fam := familiar(r)
		name, _, _ := strings.Cut(fam, ":")
		for _, p := range patterns {
			if globMatch(p, fam) || globMatch(p, name) {
				out = append(out, fam)
				break
			}
		}
	}
	return out
}

// imageUsers counts containers per image ID.
func (d *Daemon) imageUsers() map[digest.Digest]int {
	counts := map[digest.Digest]int{}
	for _, c := range d.containers.list() {
		c.mu.Lock()
		counts[c.ImageID]++
		c.mu.Unlock()
	}
	return counts
}

// ImageInspect implements api.ImageBackend.
func (d *Daemon) ImageInspect(ctx context.Context, name string) (*imagetypes.InspectResponse, error) {
	img, err := d.images.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	cfg := img.Config.Config
	comment := ""
	if h := img.Config.History; len(h) > 0 {
		comment = h[len(h)-1].Comment
	}
	layers := make([]string, len(img.Config.RootFS.DiffIDs))
	for i, l := range img.Config.RootFS.DiffIDs {
		layers[i] = l.String()
	}
	created := ""
	if img.Config.Created != nil {
		created = img.Config.Created.UTC().Format(time.RFC3339Nano)
	}
	return &imagetypes.InspectResponse{
		ID:           img.ID.String(),
		RepoTags:     familiarAll(img.RepoTags),
		RepoDigests:  familiarAll(img.RepoDigests),
		Comment:      comment,
		Created:      created,
		Author:       img.Config.Author,
		Config:       &cfg,
		Architecture: img.Config.Architecture,
		Variant:      img.Config.Variant,
		Os:           img.Config.OS,
		Size:         img.Size,
		GraphDriver:  &storage.DriverData{Name: "overlay2", Data: map[string]string{}},
		RootFS:       imagetypes.RootFS{Type: "layers", Layers: layers},
	}, nil
}

// ImageHistory implements api.ImageBackend.
func (d *Daemon) ImageHistory(ctx context.Context, name string) ([]imagetypes.HistoryResponseItem, error) {
	img, err := d.images.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	hist, err := d.images.History(ctx, img.ID)
	if err != nil {
		return nil, err
	}
	out := make([]imagetypes.HistoryResponseItem, 0, len(hist))
	for _, h := range hist {
		tags := familiarAll(h.Tags)
		if len(tags) == 0 {
			tags = nil
		}
		out = append(out, imagetypes.HistoryResponseItem{
			ID: h.ID, Created: h.Created.Unix(), CreatedBy: h.CreatedBy, Tags: tags, Size: h.Size, Comment: h.Comment,
		})
	}
	return out, nil
}

// TagImage implements api.ImageBackend.
func (d *Daemon) TagImage(ctx context.Context, name, repo, tag string) error {
	img, err := d.images.Get(ctx, name)
	if err != nil {
		return err
	}
	ref := repo
	if tag != "" {
		ref += ":" + tag
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	if _, isDigest := named.(reference.Digested); isDigest {
		return errdefs.InvalidParameterf("refusing to create a tag with a digest reference")
	}
	if err := d.images.Tag(ctx, img.ID, ref); err != nil {
		return err
	}
	d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionTag, img.ID.String(), map[string]string{"name": familiar(ref)})
	return nil
}

// ImageDelete implements api.ImageBackend.
func (d *Daemon) ImageDelete(ctx context.Context, name string, force, prune bool) ([]imagetypes.DeleteResponse, error) {
	d.waitRemovals() // removed containers' rootfs no longer hold their image
	users := d.imageUsers()
	res, err := d.images.Delete(ctx, name, force, prune, func(id digest.Digest) bool { return users[id] > 0 })
	if err != nil {
		return nil, err
	}
	out := make([]imagetypes.DeleteResponse, 0, len(res))
	for _, r := range res {
		if r.Untagged != "" {
			out = append(out, imagetypes.DeleteResponse{Untagged: familiar(r.Untagged)})
			d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionUnTag, r.Untagged, map[string]string{"name": familiar(r.Untagged)})
		} else {
			out = append(out, imagetypes.DeleteResponse{Deleted: r.Deleted})
			d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionDelete, r.Deleted, nil)
		}
	}
	return out, nil
}

// familiar shortens a normalised reference the way the docker CLI shows it.
func familiar(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(named)
}

func familiarAll(refs []string) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, familiar(r))
	}
	return out
}
