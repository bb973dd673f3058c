package distribution

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PullOptions control Pull.
type PullOptions struct {
	// Platform is "os/arch[/variant]"; "" is the host's.
	Platform string
	// Keychain supplies credentials (nil: anonymous).
	Keychain Keychain
	// Progress receives Docker's JSON messages (nil: none).
	Progress *Progress
	// MaxExpansion refuses layers expanding more than this many times their
	// compressed size (beyond 64 MiB); 0 uses DefaultMaxExpansion.
	MaxExpansion int64
}

// DefaultMaxExpansion bounds decompression: real layers expand a few
// times; a gzip bomb about a thousand.
const DefaultMaxExpansion = 200

// PullResult describes a finished pull.
type PullResult struct {
	Image *image.Image
	// Digest is the digest of the manifest (or index) the reference resolved to.
	Digest digest.Digest
	// UpToDate is true when nothing was downloaded and the reference
	// already pointed at the image.
	UpToDate bool
}

// resolved is a manifest fetched and verified.
type resolved struct {
	raw       []byte
	mediaType string
	digest    digest.Digest
}

// fetchManifest GETs ref (a tag or digest) and verifies what comes back:
// against the digest asked for, and against the digest the registry claims.
func (r *repository) fetchManifest(ctx context.Context, ref string) (*resolved, error) {
	resp, err := r.do(ctx, request{method: http.MethodGet, url: r.url("/manifests/" + ref), header: http.Header{"Accept": {acceptManifests}}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, errdefs.Unavailable(fmt.Errorf("read manifest: %w", err))
	}
	if len(raw) > maxManifestSize {
		return nil, errdefs.InvalidParameterf("manifest %s: larger than %d bytes", ref, maxManifestSize)
	}
	got := digest.FromBytes(raw)
	if want, err := digest.Parse(ref); err == nil && want != got {
		return nil, errdefs.InvalidParameterf("manifest verification failed for digest %s: got %s", want, got)
	}
	if claimed := resp.Header.Get("Docker-Content-Digest"); claimed != "" && claimed != got.String() {
		if cd, err := digest.Parse(claimed); err == nil && cd.Algorithm() == digest.SHA256 {
			return nil, errdefs.InvalidParameterf("manifest %s: registry claims digest %s but the content is %s", ref, claimed, got)
		}
	}
	return &resolved{raw: raw, mediaType: resp.Header.Get("Content-Type"), digest: got}, nil
}

// fetchSmallBlob reads a whole blob (a config) and verifies it.
func (r *repository) fetchSmallBlob(ctx context.Context, d ocispec.Descriptor, limit int64) ([]byte, error) {
	if d.Size > limit {
		return nil, errdefs.InvalidParameterf("blob %s: %d bytes is too large", d.Digest, d.Size)
	}
	resp, err := r.do(ctx, request{method: http.MethodGet, url: r.url("/blobs/" + d.Digest.String())})
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", d.Digest, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, errdefs.Unavailable(fmt.Errorf("fetch %s: %w", d.Digest, err))
	}
	if int64(len(b)) > limit {
		return nil, errdefs.InvalidParameterf("blob %s: larger than %d bytes", d.Digest, limit)
	}
	if got := digest.FromBytes(b); got != d.Digest {
		return nil, errdefs.InvalidParameterf("blob verification failed: %s has digest %s", d.Digest, got)
	}
	return b, nil
}

// resolve finds the image manifest ref names, on the mirrors first for
// Docker Hub, and returns it with the repository that served it.
func (c *Client) resolve(ctx context.Context, ref Ref, creds Credentials, plat Platform) (*repository, *resolved, *resolved, error) {
	var repos []*repository
	if ref.Domain == dockerHubDomain {
		for _, m := range c.opts.Mirrors {
			repos = append(repos, c.mirrorRepository(m, ref.Path, creds))
		}
	}
	repos = append(repos, c.repository(ctx, apiHost(ref.Domain), ref.Path, creds, false))
	var top *resolved
	var repo *repository
	var lastErr error
	for i, r := range repos {
		m, err := r.fetchManifest(ctx, ref.tagOrDigest())
		if err == nil {
			top, repo = m, r
			break
		}
		lastErr = err
		if i < len(repos)-1 {
			c.log.Info("mirror failed, trying the next endpoint", "mirror", r.ep.host, "err", err)
		}
	}
	if top == nil {
		if errdefs.IsNotFound(lastErr) {
			return nil, nil, nil, errdefs.NotFound(fmt.Errorf("manifest for %s not found: %w", ref.Familiar(), lastErr))
		}
		return nil, nil, nil, lastErr
	}
	kind, mt, err := sniffManifest(top.raw, top.mediaType)
	if err != nil {
		return nil, nil, nil, err
	}
	top.mediaType = mt
	if kind == kindImage {
		return repo, top, top, nil
	}
	idx, err := ParseIndex(top.raw)
	if err != nil {
		return nil, nil, nil, err
	}
	desc, err := selectManifest(idx, plat)
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := repo.fetchManifest(ctx, desc.Digest.String())
	if err != nil {
		return nil, nil, nil, err
	}
	kind, mt, err = sniffManifest(m.raw, m.mediaType)
	if err != nil {
		return nil, nil, nil, err
	}
	if kind != kindImage {
		return nil, nil, nil, errdefs.InvalidParameterf("manifest %s: an index inside an index is not supported", desc.Digest)
	}
	m.mediaType = mt
	return repo, top, m, nil
}

// Pull fetches ref into store: manifest (choosing the platform from an
// index), config, then the missing layers in parallel, each verified and
// unpacked while it downloads.
func (c *Client) Pull(ctx context.Context, store *image.Store, ref Ref, opts PullOptions) (*PullResult, error) {
	p := opts.Progress
	plat, err := ParsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	var creds Credentials
	if opts.Keychain != nil {
		if creds, err = opts.Keychain.Resolve(ctx, ref.Domain); err != nil {
			return nil, err
		}
	}
	repo, top, m, err := c.resolve(ctx, ref, creds, plat)
	if err != nil {
		return nil, err
	}
	manifest, err := ParseManifest(m.raw)
	if err != nil {
		return nil, err
	}
	rawConfig, err := repo.fetchSmallBlob(ctx, manifest.Config, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := ParseConfig(rawConfig, len(manifest.Layers))
	if err != nil {
		return nil, err
	}
	if opts.Platform != "" && (cfg.OS != plat.OS || normalizePlatform(cfg.Platform).Architecture != plat.Architecture) {
		return nil, errdefs.NotFoundf("image %s is for %s/%s, not %s", ref.Familiar(), cfg.OS, cfg.Architecture, opts.Platform)
	}
	id := manifest.Config.Digest
	storeRef := ref.String()
	if ref.Digest != "" {
		// A pinned pull records only the digest reference, as Docker does.
		storeRef = ref.Name() + "@" + ref.Digest.String()
	}
	prior, _ := store.Get(ctx, storeRef)

	idLabel := ref.Tag
	if ref.Digest != "" {
		idLabel = ref.Digest.String()
	}
	p.Status(idLabel, "Pulling from "+ref.Path)

	present := store.LayersPresent(ctx, manifest.Layers, cfg.RootFS.DiffIDs)
	for i, l := range manifest.Layers {
		if i < present {
			p.Event(shortID(l.Digest), "Already exists")
		} else {
			p.Event(shortID(l.Digest), "Pulling fs layer")
		}
	}
	view := &remoteView{repo: repo, raw: m.raw, digest: m.digest, manifest: manifest, rawConfig: rawConfig, cfg: cfg, progress: p}
	maxExp := opts.MaxExpansion
	if maxExp == 0 {
		maxExp = DefaultMaxExpansion
	}
	img, err := store.Put(ctx, view, image.PutOptions{
		Ref:          storeRef,
		RecordDigest: true,
		MaxExpansion: maxExp,
		LayerDone: func(i int) {
			l := manifest.Layers[i]
			p.Bar(shortID(l.Digest), "Extracting", l.Size, l.Size)
			p.Event(shortID(l.Digest), "Pull complete")
		},
	})
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref.Familiar(), err)
	}
	if top.digest != m.digest {
		// Record the index digest too: it is what the user's reference
		// resolved to and what docker shows in RepoDigests.
		store.Tag(ctx, img.ID, ref.Name()+"@"+top.digest.String())
		if img, err = store.Get(ctx, img.ID.String()); err != nil {
			return nil, err
		}
	}
	res := &PullResult{Image: img, Digest: top.digest, UpToDate: prior != nil && prior.ID == id && present == len(manifest.Layers)}
	p.Status("", "Digest: "+top.digest.String())
	if res.UpToDate {
		p.Status("", "Status: Image is up to date for "+ref.Familiar())
	} else {
		p.Status("", "Status: Downloaded newer image for "+ref.Familiar())
	}
	return res, nil
}

// remoteView is an image in a registry seen as an image.View: Put pulls
// its layers through Compressed.
type remoteView struct {
	repo      *repository
	raw       []byte
	digest    digest.Digest
	manifest  *ocispec.Manifest
	rawConfig []byte
	cfg       *dockerspec.DockerOCIImage
	progress  *Progress
}

func (v *remoteView) Digest() (digest.Digest, error)                  { return v.digest, nil }
func (v *remoteView) Manifest() (*ocispec.Manifest, error)            { return v.manifest, nil }
func (v *remoteView) RawManifest() ([]byte, error)                    { return v.raw, nil }
func (v *remoteView) ConfigName() (digest.Digest, error)              { return v.manifest.Config.Digest, nil }
func (v *remoteView) ConfigFile() (*dockerspec.DockerOCIImage, error) { return v.cfg, nil }
func (v *remoteView) RawConfigFile() ([]byte, error)                  { return v.rawConfig, nil }
func (v *remoteView) Layers() ([]image.Layer, error) {
	out := make([]image.Layer, len(v.manifest.Layers))
	for i, d := range v.manifest.Layers {
		out[i] = &remoteLayer{v: v, desc: d, diffID: v.cfg.RootFS.DiffIDs[i]}
	}
	return out, nil
}

type remoteLayer struct {
	v      *remoteView
	desc   ocispec.Descriptor
	diffID digest.Digest
}

func (l *remoteLayer) Digest() (digest.Digest, error) { return l.desc.Digest, nil }
func (l *remoteLayer) DiffID() (digest.Digest, error) { return l.diffID, nil }
func (l *remoteLayer) Size() (int64, error)           { return l.desc.Size, nil }
func (l *remoteLayer) MediaType() (string, error)     { return l.desc.MediaType, nil }
func (l *remoteLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("remote layer: only the compressed blob is available")
}

// Compressed opens the blob: a reader that resumes with a range request
// when the connection breaks, refuses more bytes than the manifest
// announced, and reports progress.
func (l *remoteLayer) Compressed() (io.ReadCloser, error) {
	ctx := context.Background()
	br := &blobReader{ctx: ctx, repo: l.v.repo, desc: l.desc}
	if err := br.open(); err != nil {
		return nil, fmt.Errorf("fetch layer %s: %w", l.desc.Digest, err)
	}
	id := shortID(l.desc.Digest)
	p := l.v.progress
	pr := &progressReader{r: br, p: p, id: id, action: "Downloading", total: l.desc.Size, onEOF: func() {
		p.Event(id, "Verifying Checksum")
		p.Event(id, "Download complete")
	}}
	return readCloser{Reader: pr, close: br.Close}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// blobReader streams one blob, resuming after transient failures.
type blobReader struct {
	ctx     context.Context
	repo    *repository
	desc    ocispec.Descriptor
	body    io.ReadCloser
	off     int64
	retries int
}

func (b *blobReader) open() error {
	h := http.Header{}
	if b.off > 0 {
		h.Set("Range", "bytes="+strconv.FormatInt(b.off, 10)+"-")
	}
	resp, err := b.repo.do(b.ctx, request{method: http.MethodGet, url: b.repo.url("/blobs/" + b.desc.Digest.String()), header: h})
	if err != nil {
		return err
	}
	if b.off > 0 && resp.StatusCode != http.StatusPartialContent {
		// No range support: skip what we have.
		if _, err := io.CopyN(io.Discard, resp.Body, b.off); err != nil {
			resp.Body.Close()
			return err
		}
	}
	if resp.ContentLength >= 0 && b.off == 0 && resp.StatusCode == http.StatusOK && resp.ContentLength != b.desc.Size {
		resp.Body.Close()
		return errdefs.InvalidParameterf("blob %s: registry sends %d bytes, the manifest says %d", b.desc.Digest, resp.ContentLength, b.desc.Size)
	}
	b.body = resp.Body
	return nil
}

func (b *blobReader) Read(p []byte) (int, error) {
	for {
		if b.off >= b.desc.Size {
			// Never read past the announced size; one more byte means a lie.
			var one [1]byte
			if n, _ := b.body.Read(one[:]); n > 0 {
				return 0, errdefs.InvalidParameterf("blob %s: larger than the %d bytes the manifest says", b.desc.Digest, b.desc.Size)
			}
			return 0, io.EOF
		}
		if rem := b.desc.Size - b.off; int64(len(p)) > rem {
			p = p[:rem]
		}
		n, err := b.body.Read(p)
		b.off += int64(n)
		if err == nil || (err == io.EOF && b.off >= b.desc.Size) {
			if n > 0 || err == nil {
				return n, nil
			}
			continue
		}
		if n > 0 {
			return n, nil // report the data; the error comes back on the next read
		}
		if b.ctx.Err() != nil {
			return 0, b.ctx.Err()
		}
		// A short body or a broken connection: resume where we are.
		b.body.Close()
		b.retries++
		if b.retries > 3 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, errdefs.InvalidParameter(fmt.Errorf("blob %s truncated at %d of %d bytes: %w", b.desc.Digest, b.off, b.desc.Size, err))
		}
		if berr := backoff(b.ctx, b.retries); berr != nil {
			return 0, berr
		}
		if oerr := b.open(); oerr != nil {
			return 0, fmt.Errorf("resume blob %s at %d: %w", b.desc.Digest, b.off, oerr)
		}
	}
}

func (b *blobReader) Close() error {
	if b.body != nil {
		return b.body.Close()
	}
	return nil
}

var _ = bytes.NewReader
var _ = strings.Cut
