package distribution

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/berth-dev/berth/image"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushOptions are the options of Push.
type PushOptions struct {
	Progress Progress
	// MountFrom lists other repositories (same registry) that may hold
	// the image's blobs already: they are mounted rather than uploaded.
	MountFrom []string
}

// PushResult is what one pushed tag became.
type PushResult struct {
	Tag    string
	Digest digest.Digest
	Size   int
}

// Push uploads the image named (a tagged reference) with its manifest and
// config byte for byte, so that its digest is the local one. Blobs the
// registry has are skipped; layers upload in parallel.
func Push(ctx context.Context, store *image.Store, c *Client, named reference.NamedTagged, opts PushOptions) (PushResult, error) {
	p := opts.Progress
	view, err := store.View(ctx, named.String())
	if err != nil {
		return PushResult{}, err
	}
	raw, err := view.RawManifest()
	if err != nil {
		return PushResult{}, err
	}
	m, err := view.Manifest()
	if err != nil {
		return PushResult{}, err
	}
	layers, err := view.Layers()
	if err != nil {
		return PushResult{}, err
	}
	rawConfig, err := view.RawConfigFile()
	if err != nil {
		return PushResult{}, err
	}
	repo := c.Repository(named)
	for _, l := range layers {
		d, _ := l.Digest()
		p.send(shortID(d), "Preparing", nil)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(layers))
	sem := make(chan struct{}, 3)
	for i, l := range layers {
		d, _ := l.Digest()
		p.send(shortID(d), "Waiting", nil)
		wg.Add(1)
		go func(i int, l image.Layer) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = pushLayer(ctx, repo, l, opts)
		}(i, l)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return PushResult{}, err
		}
	}
	cfgDigest := m.Config.Digest
	if ok, err := repo.BlobExists(ctx, cfgDigest); err != nil {
		return PushResult{}, err
	} else if !ok {
		open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(rawConfig)), nil }
		if err := repo.PutBlob(ctx, cfgDigest, int64(len(rawConfig)), open); err != nil {
			return PushResult{}, fmt.Errorf("push config: %w", err)
		}
	}
	mediaType := m.MediaType
	if mediaType == "" {
		mediaType = sniffMediaType(raw)
	}
	if mediaType == "" {
		mediaType = ocispec.MediaTypeImageManifest
	}
	if err := repo.PutManifest(ctx, named.Tag(), mediaType, raw); err != nil {
		return PushResult{}, err
	}
	res := PushResult{Tag: named.Tag(), Digest: digest.FromBytes(raw), Size: len(raw)}
	p.send("", fmt.Sprintf("%s: digest: %s size: %d", res.Tag, res.Digest, res.Size), nil)
	if p != nil {
		aux, _ := json.Marshal(res)
		msg := json.RawMessage(aux)
		p(jsonstream.Message{Progress: &jsonstream.Progress{}, Aux: &msg})
	}
	return res, nil
}

func pushLayer(ctx context.Context, repo *Repository, l image.Layer, opts PushOptions) error {
	p := opts.Progress
	d, err := l.Digest()
	if err != nil {
		return err
	}
	size, err := l.Size()
	if err != nil {
		return err
	}
	id := shortID(d)
	if ok, err := repo.BlobExists(ctx, d); err != nil {
		return err
	} else if ok {
		p.send(id, "Layer already exists", nil)
		return nil
	}
	for _, from := range opts.MountFrom {
		if from == repo.name {
			continue
		}
		if ok, _ := repo.Mount(ctx, d, from); ok {
			p.send(id, "Mounted from "+from, nil)
			return nil
		}
	}
	open := func() (io.ReadCloser, error) {
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		return &progressReader{r: rc, c: rc, id: id, total: size, p: p, verb: "Pushing"}, nil
	}
	if err := repo.PutBlob(ctx, d, size, open); err != nil {
		return fmt.Errorf("push layer %s: %w", id, err)
	}
	p.send(id, "Pushed", nil)
	return nil
}
