package distribution

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/client/pkg/progress"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PullOptions controls Pull.
type PullOptions struct {
	// Platform is "os/arch[/variant]"; "" is the host's.
	Platform string
	// Auth is the credential sent by the client; empty falls back to the keychain.
	Auth AuthConfig
}

// PullResult says what a pull did.
type PullResult struct {
	Image *image.Image
	// Digest is the manifest (or index) digest the reference resolved to.
	Digest digest.Digest
	// UpToDate is true when the reference already named this image.
	UpToDate bool
}

// ParseReference normalises a user reference as Docker does: "busybox" is
// docker.io/library/busybox:latest; digests are kept.
func ParseReference(ref string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid reference format: %w", err))
	}
	if _, ok := named.(reference.Digested); ok {
		if _, tagged := named.(reference.Tagged); tagged {
			dg := named.(reference.Digested).Digest()
			named, _ = reference.WithDigest(reference.TrimNamed(named), dg)
		}
		return named, nil
	}
	return reference.TagNameOnly(named), nil
}

// Pull fetches ref into store, writing Docker's progress messages to out.
func (c *Client) Pull(ctx context.Context, store *image.Store, ref string, opts PullOptions, out progress.Output) (*PullResult, error) {
	if out == nil {
		out = progress.DiscardOutput()
	}
	named, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	platform, err := ParsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, ep := range c.endpoints(reference.Domain(named)) {
		s := c.newSession(ep, reference.Path(named), opts.Auth, "pull")
		res, err := c.pullFrom(ctx, s, store, named, platform, out)
		if err == nil {
			return res, nil
		}
		lastErr = err
		if !ep.mirror || ctx.Err() != nil {
			break
		}
		c.opts.Log.Info("pull from mirror failed, trying the next endpoint", "mirror", ep.base, "err", err)
	}
	return nil, lastErr
}

// fetchManifest GETs a manifest by tag or digest and verifies its digest.
func (s *session) fetchManifest(ctx context.Context, ref string, want digest.Digest) ([]byte, *decoded, digest.Digest, error) {
	resp, err := s.do(ctx, request{
		method: "GET", url: "/v2/" + s.repo + "/manifests/" + ref,
		header: http.Header{"Accept": {acceptManifests}}, retry: true,
	})
	if err != nil {
		return nil, nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, "", registryError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, nil, "", err
	}
	if len(b) > maxManifestSize {
		return nil, nil, "", errdefs.InvalidParameterf("manifest %s is larger than %d bytes", ref, maxManifestSize)
	}
	got := digest.FromBytes(b)
	if want != "" && got != want {
		return nil, nil, "", errdefs.InvalidParameterf("manifest verification failed for digest %s: got %s", want, got)
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && want == "" && digest.Digest(h) != got {
		return nil, nil, "", errdefs.InvalidParameterf("manifest %s: registry says digest %s but content is %s", ref, h, got)
	}
	d, err := DecodeManifest(b, resp.Header.Get("Content-Type"))
	if err != nil {
		return nil, nil, "", err
	}
	return b, d, got, nil
}

// fetchBlob GETs a small blob (a config) whole and verifies it.
func (s *session) fetchBlob(ctx context.Context, desc ocispec.Descriptor, max int64) ([]byte, error) {
	resp, err := s.do(ctx, request{method: "GET", url: "/v2/" + s.repo + "/blobs/" + desc.Digest.String(), retry: true})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, registryError(resp))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	if int64(len(b)) > max {
		return nil, errdefs.InvalidParameterf("blob %s is larger than %d bytes", desc.Digest, max)
	}
	if got := digest.FromBytes(b); got != desc.Digest {
		return nil, errdefs.InvalidParameterf("blob %s: digest mismatch: content is %s", desc.Digest, got)
	}
	return b, nil
}

func (c *Client) pullFrom(ctx context.Context, s *session, store *image.Store, named reference.Named, platform Platform, out progress.Output) (*PullResult, error) {
	tagOrDigest := ""
	var want digest.Digest
	if dg, ok := named.(reference.Digested); ok {
		want = dg.Digest()
		tagOrDigest = want.String()
	} else {
		tagOrDigest = named.(reference.Tagged).Tag()
	}
	raw, doc, top, err := s.fetchManifest(ctx, tagOrDigest, want)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, errdefs.NotFound(fmt.Errorf("manifest for %s not found: %w", reference.FamiliarString(named), err))
		}
		return nil, fmt.Errorf("pull %s: %w", reference.FamiliarString(named), err)
	}
	if doc.index != nil {
		d, err := selectManifest(doc.index, platform)
		if err != nil {
			return nil, err
		}
		if raw, doc, _, err = s.fetchManifest(ctx, d.Digest.String(), d.Digest); err != nil {
			return nil, fmt.Errorf("pull %s: %w", reference.FamiliarString(named), err)
		}
		if doc.manifest == nil {
			return nil, errdefs.InvalidParameterf("pull %s: index entry %s is not an image manifest", reference.FamiliarString(named), d.Digest)
		}
	}
	m := doc.manifest
	progress.Message(out, idFor(named), "Pulling from "+reference.Path(named))
	rawConfig, err := s.fetchBlob(ctx, m.Config, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("pull %s: config: %w", reference.FamiliarString(named), err)
	}
	cfg, err := decodeConfig(rawConfig)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, errdefs.InvalidParameterf("pull %s: manifest has %d layers but the config %d diff IDs", reference.FamiliarString(named), len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	id := m.Config.Digest
	res := &PullResult{Digest: top}
	// Already the image this name points at: nothing to fetch.
	if cur, err := store.Get(ctx, named.String()); err == nil && cur.ID == id {
		res.UpToDate = true
	}
	blobs := make([]digest.Digest, len(m.Layers))
	for i, l := range m.Layers {
		blobs[i] = l.Digest
	}
	present := store.PresentLayers(ctx, cfg.RootFS.DiffIDs, blobs)
	layers := make([]image.Layer, len(m.Layers))
	for i, l := range m.Layers {
		if i < present {
			progress.Update(out, shortID(l.Digest), "Already exists")
		} else {
			progress.Update(out, shortID(l.Digest), "Pulling fs layer")
		}
		layers[i] = &remoteLayer{ctx: ctx, s: s, desc: l, diffID: cfg.RootFS.DiffIDs[i], out: out}
	}
	view := &remoteView{raw: raw, manifest: m, rawConfig: rawConfig, layers: layers}
	tag := ""
	if _, ok := named.(reference.Tagged); ok {
		tag = named.String()
	}
	img, err := store.Put(ctx, view, image.PutOptions{Ref: tag})
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", reference.FamiliarString(named), err)
	}
	for _, l := range m.Layers[present:] {
		progress.Update(out, shortID(l.Digest), "Pull complete")
	}
	digested := reference.TrimNamed(named).String() + "@" + top.String()
	if err := store.Tag(ctx, img.ID, digested); err != nil {
		return nil, err
	}
	if img, err = store.Get(ctx, img.ID.String()); err != nil {
		return nil, err
	}
	res.Image = img
	progress.Message(out, "", "Digest: "+top.String())
	if res.UpToDate {
		progress.Message(out, "", "Status: Image is up to date for "+reference.FamiliarString(named))
	} else {
		progress.Message(out, "", "Status: Downloaded newer image for "+reference.FamiliarString(named))
	}
	return res, nil
}

// idFor is the id of the "Pulling from" line: the tag, or the digest.
func idFor(named reference.Named) string {
	if t, ok := named.(reference.Tagged); ok {
		return t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		return d.Digest().String()
	}
	return "latest"
}

func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// remoteView is an image in a registry, as the store's Put reads it.
type remoteView struct {
	raw, rawConfig []byte
	manifest       *ocispec.Manifest
	layers         []image.Layer
}

func (v *remoteView) Digest() (digest.Digest, error)       { return digest.FromBytes(v.raw), nil }
func (v *remoteView) Manifest() (*ocispec.Manifest, error) { return v.manifest, nil }
func (v *remoteView) RawManifest() ([]byte, error)         { return v.raw, nil }
func (v *remoteView) ConfigName() (digest.Digest, error)   { return v.manifest.Config.Digest, nil }
func (v *remoteView) ConfigFile() (*dockerspec.DockerOCIImage, error) {
	var c dockerspec.DockerOCIImage
	if err := json.Unmarshal(v.rawConfig, &c); err != nil {
		return nil, err
	}
	return &c, nil
}
func (v *remoteView) RawConfigFile() ([]byte, error) { return v.rawConfig, nil }
func (v *remoteView) Layers() ([]image.Layer, error) { return v.layers, nil }

// remoteLayer streams a layer blob from the registry; the store verifies
// its digest and diff ID as it unpacks.
type remoteLayer struct {
	ctx    context.Context
	s      *session
	desc   ocispec.Descriptor
	diffID digest.Digest
	out    progress.Output
}

func (l *remoteLayer) Digest() (digest.Digest, error) { return l.desc.Digest, nil }
func (l *remoteLayer) DiffID() (digest.Digest, error) { return l.diffID, nil }
func (l *remoteLayer) Size() (int64, error)           { return l.desc.Size, nil }
func (l *remoteLayer) MediaType() (string, error)     { return l.desc.MediaType, nil }
func (l *remoteLayer) Compressed() (io.ReadCloser, error) {
	br := &blobReader{ctx: l.ctx, s: l.s, desc: l.desc, retries: l.s.c.opts.Retries}
	id := shortID(l.desc.Digest)
	pr := progress.NewProgressReader(br, l.out, l.desc.Size, id, "Downloading")
	return &doneReader{ReadCloser: pr, done: func() {
		progress.Update(l.out, id, "Verifying Checksum")
		progress.Update(l.out, id, "Download complete")
		// Unpacking ran alongside the download; what is left is the
		// store's final checks.
		_ = l.out.WriteProgress(progress.Progress{ID: id, Action: "Extracting", Current: l.desc.Size, Total: l.desc.Size})
	}}, nil
}
func (l *remoteLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("remote layer: uncompressed reads are not supported")
}

// doneReader calls done once, at the end of the stream.
type doneReader struct {
	io.ReadCloser
	done   func()
	called bool
}

func (r *doneReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err == io.EOF && !r.called {
		r.called = true
		r.done()
	}
	return n, err
}

// blobReader reads a blob, resuming with a Range request when the
// connection breaks, and refuses more or fewer bytes than the descriptor
// says.
type blobReader struct {
	ctx     context.Context
	s       *session
	desc    ocispec.Descriptor
	body    io.ReadCloser
	n       int64
	retries int
}

func (r *blobReader) open() error {
	h := http.Header{}
	if r.n > 0 {
		h.Set("Range", fmt.Sprintf("bytes=%d-", r.n))
	}
	resp, err := r.s.do(r.ctx, request{method: "GET", url: "/v2/" + r.s.repo + "/blobs/" + r.desc.Digest.String(), header: h, retry: true})
	if err != nil {
		return fmt.Errorf("blob %s: %w", r.desc.Digest, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK && r.n == 0, resp.StatusCode == http.StatusPartialContent && r.n > 0:
	case resp.StatusCode == http.StatusOK:
		// The registry ignored the range: skip what was already read.
		if _, err := io.CopyN(io.Discard, resp.Body, r.n); err != nil {
			resp.Body.Close()
			return fmt.Errorf("blob %s: resume: %w", r.desc.Digest, err)
		}
	default:
		defer resp.Body.Close()
		return fmt.Errorf("blob %s: %w", r.desc.Digest, registryError(resp))
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
		if err == io.EOF {
			if r.n < r.desc.Size {
				err = io.ErrUnexpectedEOF
			} else {
				return n, io.EOF
			}
		}
		if err != nil && n == 0 {
			if r.retries > 0 && r.ctx.Err() == nil && !errdefs.IsInvalidParameter(err) {
				r.retries--
				r.s.c.opts.Log.Info("blob download broke, resuming", "digest", r.desc.Digest, "offset", r.n, "err", err)
				r.body.Close()
				r.body = nil
				continue
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return 0, errdefs.InvalidParameterf("blob %s is truncated: got %d of %d bytes", r.desc.Digest, r.n, r.desc.Size)
			}
			return 0, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (r *blobReader) Close() error {
	if r.body != nil {
		return r.body.Close()
	}
	return nil
}

var _ = bytes.NewReader
var _ = strings.Cut
