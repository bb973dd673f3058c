package distribution

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Progress receives the messages of Docker's JSON progress stream.
type Progress func(jsonstream.Message)

func (p Progress) send(id, status string, detail *jsonstream.Progress) {
	if p != nil {
		p(jsonstream.Message{ID: id, Status: status, Progress: detail})
	}
}

// shortID is how Docker names a layer in progress messages.
func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// PullOptions are the options of Pull.
type PullOptions struct {
	// Platform selects from an index; nil means the host's.
	Platform *ocispec.Platform
	Progress Progress
	// MaxExpansion refuses layers whose tar is more than this many times
	// their compressed blob (beyond 64 MiB); 0 means DefaultMaxExpansion.
	MaxExpansion int64
}

// DefaultMaxExpansion bounds decompression: rootfs layers expand a few
// times, a gzip bomb about a thousand.
const DefaultMaxExpansion = 200

func maxExpansion(opts PullOptions) int64 {
	if opts.MaxExpansion > 0 {
		return opts.MaxExpansion
	}
	return DefaultMaxExpansion
}

// Pull fetches named (tagged, or pinned by digest) into the store and
// tags it. Layers are verified, decompressed and unpacked as they
// download, several at a time; layers already present are not fetched.
func Pull(ctx context.Context, store *image.Store, c *Client, named reference.Named, opts PullOptions) (*image.Image, error) {
	named = reference.TagNameOnly(named)
	ref := ""
	switch n := named.(type) {
	case reference.Canonical:
		ref = n.Digest().String()
	case reference.Tagged:
		ref = n.Tag()
	}
	familiar := reference.FamiliarString(named)
	p := opts.Progress
	repo := c.Repository(named)
	data, mediaType, dgst, err := repo.Manifest(ctx, ref)
	if err != nil {
		return nil, err // before any progress: a plain error answer
	}
	p.send(ref, "Pulling from "+reference.FamiliarName(named), nil)
	if mediaType == mediaTypeSchema1 || sniffMediaType(data) == mediaTypeSchema1 {
		return nil, errdefs.InvalidParameterf("%s: Docker image manifest schema 1 is not supported", familiar)
	}
	if isIndex(mediaType, data) {
		want := hostPlatform()
		if opts.Platform != nil {
			want = *opts.Platform
		}
		child, err := selectPlatform(data, want)
		if err != nil {
			return nil, err
		}
		if data, _, dgst, err = repo.Manifest(ctx, child.String()); err != nil {
			return nil, err
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, errdefs.InvalidParameterf("%s: invalid manifest: %v", familiar, err)
	}
	if err := checkManifest(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", familiar, err)
	}
	rawConfig, err := repo.BlobBytes(ctx, m.Config.Digest)
	if err != nil {
		return nil, err
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(rawConfig, &cfg); err != nil {
		return nil, errdefs.InvalidParameterf("%s: invalid image config: %v", familiar, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, errdefs.InvalidParameterf("%s: config has %d diff IDs for %d layers", familiar, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	upToDate := false
	if before, err := store.Get(ctx, named.String()); err == nil && before.ID == m.Config.Digest {
		upToDate = true
	}
	have := store.HaveLayers(ctx, cfg.RootFS.DiffIDs, m.Layers)
	layers := make([]image.Layer, len(m.Layers))
	for i, desc := range m.Layers {
		id := shortID(desc.Digest)
		if i < have {
			p.send(id, "Already exists", &jsonstream.Progress{})
		} else {
			p.send(id, "Pulling fs layer", &jsonstream.Progress{})
		}
		layers[i] = &remoteLayer{ctx: ctx, repo: repo, desc: desc, diffID: cfg.RootFS.DiffIDs[i], progress: p}
	}
	storeRef := named.String()
	img, err := store.Put(ctx, &remoteView{raw: data, manifest: &m, rawConfig: rawConfig, layers: layers}, image.PutOptions{Ref: storeRef, RecordDigest: true, MaxExpansion: maxExpansion(opts)})
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", familiar, err)
	}
	for i, desc := range m.Layers {
		if i >= have {
			p.send(shortID(desc.Digest), "Pull complete", &jsonstream.Progress{})
		}
	}
	p.send("", "Digest: "+dgst.String(), nil)
	if upToDate {
		p.send("", "Status: Image is up to date for "+familiar, nil)
	} else {
		p.send("", "Status: Downloaded newer image for "+familiar, nil)
	}
	return img, nil
}

func hostPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: goruntime.GOOS, Architecture: goruntime.GOARCH}
	if p.Architecture == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// sniffMediaType reads a manifest's own mediaType field.
func sniffMediaType(data []byte) string {
	var v struct {
		MediaType     string          `json:"mediaType"`
		SchemaVersion int             `json:"schemaVersion"`
		Manifests     json.RawMessage `json:"manifests"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	if v.SchemaVersion == 1 {
		return mediaTypeSchema1
	}
	if v.MediaType == "" && len(v.Manifests) > 0 {
		return ocispec.MediaTypeImageIndex
	}
	return v.MediaType
}

func isIndex(mediaType string, data []byte) bool {
	switch mediaType {
	case ocispec.MediaTypeImageIndex, MediaTypeDockerList:
		return true
	case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
		return false
	}
	mt := sniffMediaType(data)
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerList
}

// selectPlatform picks the manifest for want from an index.
func selectPlatform(data []byte, want ocispec.Platform) (digest.Digest, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return "", errdefs.InvalidParameterf("invalid manifest index: %v", err)
	}
	for _, d := range idx.Manifests {
		p := d.Platform
		if p == nil || p.OS != want.OS || p.Architecture != want.Architecture {
			continue
		}
		if want.Variant != "" && p.Variant != "" && p.Variant != want.Variant {
			continue
		}
		if err := d.Digest.Validate(); err != nil {
			return "", errdefs.InvalidParameterf("manifest index entry: %v", err)
		}
		return d.Digest, nil
	}
	name := want.OS + "/" + want.Architecture
	if want.Variant != "" {
		name += "/" + want.Variant
	}
	return "", errdefs.NotFoundf("no matching manifest for %s in the manifest list entries", name)
}

// checkManifest refuses what the store cannot take.
func checkManifest(m *ocispec.Manifest) error {
	if err := m.Config.Digest.Validate(); err != nil {
		return errdefs.InvalidParameterf("invalid config digest: %v", err)
	}
	for _, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return errdefs.InvalidParameterf("invalid layer digest: %v", err)
		}
		switch {
		case strings.HasSuffix(l.MediaType, "tar+gzip"), strings.HasSuffix(l.MediaType, "tar.gzip"),
			strings.HasSuffix(l.MediaType, "tar+zstd"), strings.HasSuffix(l.MediaType, ".tar"),
			l.MediaType == "application/vnd.docker.image.rootfs.diff.tar.gzip":
		default:
			return errdefs.InvalidParameterf("unsupported layer media type %q", l.MediaType)
		}
		if l.Size < 0 {
			return errdefs.InvalidParameterf("layer %s has a negative size", l.Digest)
		}
	}
	return nil
}

// remoteView is an image being pulled, as the store's Put reads it.
type remoteView struct {
	raw       []byte
	manifest  *ocispec.Manifest
	rawConfig []byte
	layers    []image.Layer
}

func (v *remoteView) Digest() (digest.Digest, error)       { return digest.FromBytes(v.raw), nil }
func (v *remoteView) Manifest() (*ocispec.Manifest, error) { return v.manifest, nil }
func (v *remoteView) RawManifest() ([]byte, error)         { return v.raw, nil }
func (v *remoteView) ConfigName() (digest.Digest, error)   { return v.manifest.Config.Digest, nil }
func (v *remoteView) RawConfigFile() ([]byte, error)       { return v.rawConfig, nil }
func (v *remoteView) Layers() ([]image.Layer, error)       { return v.layers, nil }
func (v *remoteView) ConfigFile() (*dockerspec.DockerOCIImage, error) {
	var c dockerspec.DockerOCIImage
	err := json.Unmarshal(v.rawConfig, &c)
	return &c, err
}

// remoteLayer streams a layer blob from the registry, reporting progress.
type remoteLayer struct {
	ctx      context.Context
	repo     *Repository
	desc     ocispec.Descriptor
	diffID   digest.Digest
	progress Progress
}

func (l *remoteLayer) Digest() (digest.Digest, error) { return l.desc.Digest, nil }
func (l *remoteLayer) DiffID() (digest.Digest, error) { return l.diffID, nil }
func (l *remoteLayer) Size() (int64, error)           { return l.desc.Size, nil }
func (l *remoteLayer) MediaType() (string, error)     { return l.desc.MediaType, nil }
func (l *remoteLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("remote layers are read compressed")
}
func (l *remoteLayer) Compressed() (io.ReadCloser, error) {
	br := &blobReader{ctx: l.ctx, repo: l.repo, desc: l.desc, retries: 3}
	if err := br.open(); err != nil {
		return nil, err
	}
	return &progressReader{r: br, c: br, id: shortID(l.desc.Digest), total: l.desc.Size, p: l.progress, verb: "Downloading", done: []string{"Verifying Checksum", "Download complete"}}, nil
}

// blobReader reads a layer blob, resuming with a Range request where a
// broken connection left off, and refusing more or fewer bytes than the
// descriptor says (the store then verifies the digest). It stops with the
// pull's context: a client that goes away ends the downloads.
type blobReader struct {
	ctx     context.Context
	repo    *Repository
	desc    ocispec.Descriptor
	body    io.ReadCloser
	n       int64
	retries int
}

func (r *blobReader) open() error {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.repo.url("blobs", r.desc.Digest.String()), nil)
	if err != nil {
		return err
	}
	if r.n > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", r.n))
	}
	resp, err := r.repo.do(req, r.repo.scope("pull"))
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusOK && r.n == 0, resp.StatusCode == http.StatusPartialContent && r.n > 0:
	case resp.StatusCode == http.StatusOK:
		// The registry ignored the range: skip what was already read.
		if _, err := io.CopyN(io.Discard, resp.Body, r.n); err != nil {
			resp.Body.Close()
			return fmt.Errorf("resume blob %s: %w", r.desc.Digest, err)
		}
	default:
		defer resp.Body.Close()
		return registryError("fetch blob "+r.desc.Digest.String(), resp)
	}
	r.body = resp.Body
	return nil
}

func (r *blobReader) Read(p []byte) (int, error) {
	for {
		if r.body == nil {
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		if rest := r.desc.Size - r.n + 1; int64(len(p)) > rest {
			p = p[:rest]
		}
		n, err := r.body.Read(p)
		r.n += int64(n)
		if r.n > r.desc.Size {
			return n, errdefs.InvalidParameterf("blob %s is larger than the %d bytes its descriptor says", r.desc.Digest, r.desc.Size)
		}
		if err == io.EOF && r.n < r.desc.Size {
			err = io.ErrUnexpectedEOF
		}
		if n > 0 || err == nil || err == io.EOF {
			return n, err
		}
		if r.retries > 0 && r.ctx.Err() == nil {
			r.retries--
			r.body.Close()
			r.body = nil
			continue // resume from byte r.n
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, errdefs.InvalidParameterf("blob %s is truncated: got %d of %d bytes", r.desc.Digest, r.n, r.desc.Size)
		}
		return 0, err
	}
}

func (r *blobReader) Close() error {
	if r.body != nil {
		return r.body.Close()
	}
	return nil
}

// progressReader reports the bytes read through it, at most every 100 ms.
type progressReader struct {
	r     io.Reader
	c     io.Closer
	id    string
	total int64
	p     Progress
	verb  string
	done  []string

	mu    sync.Mutex
	n     int64
	last  time.Time
	ended bool
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.mu.Lock()
	r.n += int64(n)
	now := time.Now()
	if now.Sub(r.last) >= 100*time.Millisecond || (err == io.EOF && !r.ended) {
		r.last = now
		r.p.send(r.id, r.verb, &jsonstream.Progress{Current: r.n, Total: r.total})
	}
	if err == io.EOF && !r.ended {
		r.ended = true
		for _, s := range r.done {
			r.p.send(r.id, s, &jsonstream.Progress{})
		}
	}
	r.mu.Unlock()
	return n, err
}

func (r *progressReader) Close() error { return r.c.Close() }
