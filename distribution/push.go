package distribution

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/klauspost/pgzip"

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
	// Uncompressed layers (imports, commits, builds) go out gzip-compressed,
	// as registries and their clients expect; the manifest then names the
	// compressed blobs, and its digest is the pushed one.
	var tmpFiles []string
	defer func() {
		for _, f := range tmpFiles {
			os.Remove(f)
		}
	}()
	rewritten := false
	for i, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return PushResult{}, err
		}
		if !isUncompressed(mt) {
			continue
		}
		d, _ := l.Digest()
		diffID, _ := l.DiffID()
		// Pushed before: if the registry holds that gzip form, the layer
		// needs neither compressing nor uploading.
		if desc, ok := store.CompressedLayer(ctx, diffID); ok {
			if exists, err := repo.BlobExists(ctx, desc.Digest); err == nil && exists {
				layers[i] = &pushedLayer{desc: desc}
				m.Layers[i] = desc
				rewritten = true
				continue
			}
		}
		gz, desc, err := compressLayer(l)
		if err != nil {
			return PushResult{}, fmt.Errorf("compress layer %s: %w", shortID(d), err)
		}
		if err := store.SetCompressedLayer(ctx, diffID, desc); err != nil {
			return PushResult{}, err
		}
		tmpFiles = append(tmpFiles, gz)
		layers[i] = &fileLayer{path: gz, desc: desc}
		m.Layers[i] = desc
		rewritten = true
	}
	if rewritten {
		m.MediaType = ocispec.MediaTypeImageManifest
		if raw, err = json.Marshal(m); err != nil {
			return PushResult{}, err
		}
	}
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

func isUncompressed(mediaType string) bool {
	return strings.HasSuffix(mediaType, ".tar") || mediaType == "application/vnd.docker.image.rootfs.diff.tar"
}

// compressLayer writes l gzip-compressed (in parallel) to a temporary
// file and describes it.
func compressLayer(l image.Layer) (string, ocispec.Descriptor, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return "", ocispec.Descriptor{}, err
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "berth-push-*.gz")
	if err != nil {
		return "", ocispec.Descriptor{}, err
	}
	defer f.Close()
	digester := digest.SHA256.Digester()
	counter := &countingWriter{}
	zw := pgzip.NewWriter(io.MultiWriter(f, digester.Hash(), counter))
	if _, err := io.Copy(zw, rc); err != nil {
		os.Remove(f.Name())
		return "", ocispec.Descriptor{}, err
	}
	if err := zw.Close(); err != nil {
		os.Remove(f.Name())
		return "", ocispec.Descriptor{}, err
	}
	return f.Name(), ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digester.Digest(), Size: counter.n}, nil
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// fileLayer is a compressed layer in a temporary file.
type fileLayer struct {
	path string
	desc ocispec.Descriptor
}

func (l *fileLayer) Digest() (digest.Digest, error)     { return l.desc.Digest, nil }
func (l *fileLayer) DiffID() (digest.Digest, error)     { return "", errors.New("not known") }
func (l *fileLayer) Size() (int64, error)               { return l.desc.Size, nil }
func (l *fileLayer) MediaType() (string, error)         { return l.desc.MediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("not kept uncompressed")
}

// pushedLayer is the compressed form of a local layer that the registry
// already holds (see image.Store.CompressedLayer).
type pushedLayer struct{ desc ocispec.Descriptor }

func (l *pushedLayer) Digest() (digest.Digest, error) { return l.desc.Digest, nil }
func (l *pushedLayer) DiffID() (digest.Digest, error) { return "", errors.New("not known") }
func (l *pushedLayer) Size() (int64, error)           { return l.desc.Size, nil }
func (l *pushedLayer) MediaType() (string, error)     { return l.desc.MediaType, nil }
func (l *pushedLayer) Compressed() (io.ReadCloser, error) {
	return nil, fmt.Errorf("blob %s left the registry during the push: push again", l.desc.Digest)
}
func (l *pushedLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("not kept uncompressed")
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
