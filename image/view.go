package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/berth-dev/berth/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// View is a read-only view of one image (after go-containerregistry's
// v1.Image): the currency between the store and pull, push, save, load and
// build. Sources produce Views; Store.Put consumes them.
type View interface {
	// Digest is the digest of the raw manifest.
	Digest() (digest.Digest, error)
	// Manifest is the parsed OCI image manifest.
	Manifest() (*ocispec.Manifest, error)
	// RawManifest is the manifest as stored or transferred.
	RawManifest() ([]byte, error)
	// ConfigName is the digest of the config: the image ID.
	ConfigName() (digest.Digest, error)
	// ConfigFile is the parsed image config.
	ConfigFile() (*dockerspec.DockerOCIImage, error)
	// RawConfigFile is the config as stored or transferred.
	RawConfigFile() ([]byte, error)
	// Layers are the image's layers, bottom first.
	Layers() ([]Layer, error)
}

// Layer is a read-only view of one layer (after go-containerregistry's v1.Layer).
type Layer interface {
	// Digest is the digest of the blob as stored (compressed if it is).
	Digest() (digest.Digest, error)
	// DiffID is the digest of the uncompressed tar.
	DiffID() (digest.Digest, error)
	// Compressed returns the blob as stored.
	Compressed() (io.ReadCloser, error)
	// Uncompressed returns the layer tar.
	Uncompressed() (io.ReadCloser, error)
	// Size is the size of the blob as stored.
	Size() (int64, error)
	// MediaType is the blob's media type.
	MediaType() (string, error)
}

// View returns a read-only view of a local image.
func (s *Store) View(ctx context.Context, ref string) (View, error) {
	var v *storeView
	err := s.db.View(func(tx *bolt.Tx) error {
		id, _, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		rec, err := getImageRecord(tx, id)
		if err != nil {
			return err
		}
		v = &storeView{s: s, id: id, rec: rec}
		if len(rec.Chain) > 0 {
			v.diffIDs = make([]digest.Digest, len(rec.Chain))
			for i, c := range rec.Chain {
				snap, err := getSnapshot(tx, c)
				if err != nil {
					return err
				}
				v.diffIDs[i] = snap.DiffID
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

type storeView struct {
	s       *Store
	id      digest.Digest
	rec     *imageRecord
	diffIDs []digest.Digest

	once     sync.Once
	raw      []byte
	manifest *ocispec.Manifest
	err      error
}

func (v *storeView) loadManifest() error {
	v.once.Do(func() {
		if v.raw, v.err = v.s.content.read(v.rec.Manifest); v.err != nil {
			return
		}
		v.manifest = new(ocispec.Manifest)
		v.err = json.Unmarshal(v.raw, v.manifest)
	})
	return v.err
}

func (v *storeView) Digest() (digest.Digest, error) { return v.rec.Manifest, nil }
func (v *storeView) Manifest() (*ocispec.Manifest, error) {
	if err := v.loadManifest(); err != nil {
		return nil, err
	}
	return v.manifest, nil
}
func (v *storeView) RawManifest() ([]byte, error) {
	if err := v.loadManifest(); err != nil {
		return nil, err
	}
	return v.raw, nil
}
func (v *storeView) ConfigName() (digest.Digest, error) { return v.id, nil }
func (v *storeView) ConfigFile() (*dockerspec.DockerOCIImage, error) {
	return v.s.config(v.id)
}
func (v *storeView) RawConfigFile() ([]byte, error) { return v.s.content.read(v.id) }
func (v *storeView) Layers() ([]Layer, error) {
	m, err := v.Manifest()
	if err != nil {
		return nil, err
	}
	if len(m.Layers) != len(v.diffIDs) {
		return nil, fmt.Errorf("image %s: manifest has %d layers, config %d", v.id, len(m.Layers), len(v.diffIDs))
	}
	out := make([]Layer, len(m.Layers))
	for i, d := range m.Layers {
		out[i] = &storeLayer{c: v.s.content, desc: d, diffID: v.diffIDs[i]}
	}
	return out, nil
}

type storeLayer struct {
	c      *contentStore
	desc   ocispec.Descriptor
	diffID digest.Digest
}

func (l *storeLayer) Digest() (digest.Digest, error) { return l.desc.Digest, nil }
func (l *storeLayer) DiffID() (digest.Digest, error) { return l.diffID, nil }
func (l *storeLayer) Size() (int64, error)           { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (string, error)     { return l.desc.MediaType, nil }
func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	return l.c.open(l.desc.Digest)
}
func (l *storeLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := l.c.open(l.desc.Digest)
	if err != nil {
		return nil, err
	}
	return decompressByMediaType(f, l.desc.MediaType)
}

// decompressByMediaType wraps rc in the decompressor its media type names.
func decompressByMediaType(rc io.ReadCloser, mediaType string) (io.ReadCloser, error) {
	switch {
	case strings.HasSuffix(mediaType, "gzip"):
		zr, err := gzip.NewReader(rc)
		if err != nil {
			rc.Close()
			return nil, err
		}
		return readCloser{zr, func() error { zr.Close(); return rc.Close() }}, nil
	case strings.HasSuffix(mediaType, "zstd"):
		zr, err := zstd.NewReader(rc, zstd.WithDecoderConcurrency(1))
		if err != nil {
			rc.Close()
			return nil, err
		}
		return readCloser{zr, func() error { zr.Close(); return rc.Close() }}, nil
	}
	return rc, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// PutOptions controls Put.
type PutOptions struct {
	// Ref optionally tags the image ("repo[:tag]").
	Ref string
	// RecordDigest also records "repo@<manifest digest>" (what a pull does).
	RecordDigest bool
	// MaxExpansion, when > 0, refuses a compressed layer whose tar grows
	// beyond MaxExpansion times its blob plus 64 MiB: a decompression bomb
	// is cut off instead of filling the disk.
	MaxExpansion int64
}

// bombSlack is what any layer may expand to whatever MaxExpansion says.
const bombSlack = 64 << 20

// Put stores an image from any source (a registry, an archive, a build),
// keeping its manifest and config byte for byte. Layers already present
// (same blob and same chain) are not read again.
func (s *Store) Put(ctx context.Context, src View, opts PutOptions) (*Image, error) {
	rawConfig, err := src.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("put: config: %w", err)
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(rawConfig, &cfg); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("put: config: %w", err))
	}
	rawManifest, err := src.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("put: manifest: %w", err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(rawManifest, &m); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("put: manifest: %w", err))
	}
	if m.Config.Digest != digest.FromBytes(rawConfig) {
		return nil, errdefs.InvalidParameterf("put: manifest names config %s, got %s", m.Config.Digest, digest.FromBytes(rawConfig))
	}
	layers, err := src.Layers()
	if err != nil {
		return nil, fmt.Errorf("put: layers: %w", err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) || len(layers) != len(m.Layers) {
		return nil, errdefs.InvalidParameterf("put: %d layers, %d diff IDs, %d manifest layers", len(layers), len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	// Skip the bottom layers already present; ingest the rest.
	have := s.HaveLayers(ctx, cfg.RootFS.DiffIDs, m.Layers)
	// Layers unpack independently (each snapshot holds only its own diff),
	// so they are fetched and unpacked in parallel.
	ingestedLayers := make([]*ingested, len(layers)-have)
	errs := make([]error, len(layers)-have)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, maxParallelLayers)
	var wg sync.WaitGroup
	for i := have; i < len(layers); i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var limit int64
			if opts.MaxExpansion > 0 && m.Layers[i].MediaType != ocispec.MediaTypeImageLayer {
				limit = m.Layers[i].Size*opts.MaxExpansion + bombSlack
			}
			l, err := s.putLayer(ctx, layers[i], m.Layers[i], cfg.RootFS.DiffIDs[i], limit)
			if err != nil {
				errs[i-have] = fmt.Errorf("put: layer %d: %w", i, err)
				cancel()
				return
			}
			ingestedLayers[i-have] = l
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, l := range ingestedLayers {
			if l != nil {
				l.discard()
			}
		}
		return nil, firstError(errs)
	}
	return s.store(ctx, &cfg, rawConfig, rawManifest, m.Layers, ingestedLayers, opts.Ref, opts.RecordDigest)
}

const maxParallelLayers = 3

// HaveLayers counts the bottom layers of an image (given by its diff IDs
// and layer descriptors) that the store already has, snapshot and blob.
func (s *Store) HaveLayers(ctx context.Context, diffIDs []digest.Digest, layers []ocispec.Descriptor) int {
	chain := chainIDs(diffIDs)
	have := 0
	s.db.View(func(tx *bolt.Tx) error {
		for have < len(chain) && have < len(layers) {
			if _, err := getSnapshot(tx, chain[have]); err != nil || !s.content.exists(layers[have].Digest) {
				break
			}
			have++
		}
		return nil
	})
	return have
}

// firstError prefers a real failure over the cancellations it caused.
func firstError(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func (s *Store) putLayer(ctx context.Context, l Layer, desc ocispec.Descriptor, diffID digest.Digest, limit int64) (*ingested, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return s.ingestLayer(ctx, rc, desc.MediaType, desc.Digest, diffID, limit)
}

// NewView assembles a View from a config and layers, with a fresh OCI
// manifest; for sources that carry no manifest of their own (docker-archive
// loads, build results).
func NewView(rawConfig []byte, layers []Layer) (View, error) {
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(rawConfig, &cfg); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("config: %w", err))
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(rawConfig), Size: int64(len(rawConfig))},
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		size, err := l.Size()
		if err != nil {
			return nil, err
		}
		mt, err := l.MediaType()
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: d, Size: size})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &memView{rawConfig: rawConfig, cfg: &cfg, rawManifest: raw, manifest: &m, layers: layers}, nil
}

type memView struct {
	rawConfig, rawManifest []byte
	cfg                    *dockerspec.DockerOCIImage
	manifest               *ocispec.Manifest
	layers                 []Layer
}

func (v *memView) Digest() (digest.Digest, error)       { return digest.FromBytes(v.rawManifest), nil }
func (v *memView) Manifest() (*ocispec.Manifest, error) { return v.manifest, nil }
func (v *memView) RawManifest() ([]byte, error)         { return v.rawManifest, nil }
func (v *memView) ConfigName() (digest.Digest, error)   { return digest.FromBytes(v.rawConfig), nil }
func (v *memView) ConfigFile() (*dockerspec.DockerOCIImage, error) {
	return v.cfg, nil
}
func (v *memView) RawConfigFile() ([]byte, error) { return v.rawConfig, nil }
func (v *memView) Layers() ([]Layer, error)       { return v.layers, nil }

// NewLayer makes a Layer from a function that opens its blob (a file in an
// archive, a build step's tar). The digests are computed on first use by
// reading the blob once.
func NewLayer(open func() (io.ReadCloser, error), mediaType string) Layer {
	return &openerLayer{open: open, mediaType: mediaType}
}

type openerLayer struct {
	open      func() (io.ReadCloser, error)
	mediaType string

	once           sync.Once
	digest, diffID digest.Digest
	size           int64
	err            error
}

func (l *openerLayer) compute() error {
	l.once.Do(func() {
		rc, err := l.open()
		if err != nil {
			l.err = err
			return
		}
		defer rc.Close()
		blobHash := digest.SHA256.Digester()
		counter := &countWriter{}
		tee := io.TeeReader(rc, io.MultiWriter(blobHash.Hash(), counter))
		ur, err := decompressByMediaType(io.NopCloser(tee), l.mediaType)
		if err != nil {
			l.err = err
			return
		}
		diffHash := digest.SHA256.Digester()
		if _, err := io.Copy(diffHash.Hash(), ur); err != nil {
			l.err = err
			return
		}
		ur.Close()
		if _, err := io.Copy(io.Discard, tee); err != nil {
			l.err = err
			return
		}
		l.digest, l.diffID, l.size = blobHash.Digest(), diffHash.Digest(), counter.n
	})
	return l.err
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func (l *openerLayer) Digest() (digest.Digest, error) {
	err := l.compute()
	return l.digest, err
}
func (l *openerLayer) DiffID() (digest.Digest, error) {
	err := l.compute()
	return l.diffID, err
}
func (l *openerLayer) Size() (int64, error) {
	err := l.compute()
	return l.size, err
}
func (l *openerLayer) MediaType() (string, error) { return l.mediaType, nil }
func (l *openerLayer) Compressed() (io.ReadCloser, error) {
	return l.open()
}
func (l *openerLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.open()
	if err != nil {
		return nil, err
	}
	return decompressByMediaType(rc, l.mediaType)
}

// BytesLayer is a convenience for small in-memory layers (tests, build steps).
func BytesLayer(blob []byte, mediaType string) Layer {
	return NewLayer(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil }, mediaType)
}
