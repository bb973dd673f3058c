package distribution

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushOptions control Push.
type PushOptions struct {
	Keychain Keychain
	Progress *Progress
	// MountFrom are repositories ("host/path") on the same registry that
	// may hold the image's blobs already: a cross-repository mount is tried
	// before uploading. Typically the image's RepoDigests.
	MountFrom []string
}

// PushResult describes a finished push.
type PushResult struct {
	Digest digest.Digest
	Size   int
}

// CompressionCache remembers the gzip form of uncompressed local layers,
// so a second push can check the registry before compressing again.
type CompressionCache interface {
	CompressedLayer(ctx context.Context, diffID digest.Digest) (ocispec.Descriptor, bool)
	SetCompressedLayer(ctx context.Context, diffID digest.Digest, desc ocispec.Descriptor) error
}

const pushParallel = 3

// Push uploads src as ref (which must carry a tag): blobs the registry
// has are skipped, blobs in a sibling repository are mounted, the rest
// uploaded in parallel (uncompressed layers gzip-compressed on the fly),
// then the manifest.
func (c *Client) Push(ctx context.Context, src image.View, ref Ref, cache CompressionCache, opts PushOptions) (*PushResult, error) {
	p := opts.Progress
	var creds Credentials
	var err error
	if opts.Keychain != nil {
		if creds, err = opts.Keychain.Resolve(ctx, ref.Domain); err != nil {
			return nil, err
		}
	}
	repo := c.repository(ctx, apiHost(ref.Domain), ref.Path, creds, true)
	manifest, err := src.Manifest()
	if err != nil {
		return nil, err
	}
	layers, err := src.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != len(manifest.Layers) {
		return nil, fmt.Errorf("push: %d layers but %d in the manifest", len(layers), len(manifest.Layers))
	}
	if err := repo.ensureAuth(ctx); err != nil {
		return nil, err
	}
	var mountFrom []string
	for _, m := range opts.MountFrom {
		if r, err := ParseRef(m); err == nil && r.Domain == ref.Domain && r.Path != ref.Path {
			mountFrom = append(mountFrom, r.Path)
		}
	}
	ids := make([]string, len(layers))
	for i, l := range layers {
		diffID, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		ids[i] = shortID(diffID)
		p.Event(ids[i], "Preparing")
	}
	// Each layer's descriptor as pushed (compressed when stored uncompressed).
	pushed := make([]ocispec.Descriptor, len(layers))
	errs := make([]error, len(layers))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, pushParallel)
	var wg sync.WaitGroup
	for i := len(layers) - 1; i >= 0; i-- {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			d, err := repo.pushLayer(ctx, layers[i], manifest.Layers[i], ids[i], cache, mountFrom, p)
			if err != nil {
				errs[i] = err
				cancel()
				return
			}
			pushed[i] = d
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rawConfig, err := src.RawConfigFile()
	if err != nil {
		return nil, err
	}
	if err := repo.pushBlobBytes(ctx, manifest.Config.Digest, rawConfig); err != nil {
		return nil, fmt.Errorf("push config: %w", err)
	}
	raw, err := src.RawManifest()
	if err != nil {
		return nil, err
	}
	mediaType := manifest.MediaType
	if changed(manifest.Layers, pushed) {
		m := ocispec.Manifest{
			Versioned:   specs.Versioned{SchemaVersion: 2},
			MediaType:   ocispec.MediaTypeImageManifest,
			Config:      manifest.Config,
			Layers:      pushed,
			Annotations: manifest.Annotations,
		}
		if raw, err = json.Marshal(m); err != nil {
			return nil, err
		}
		mediaType = m.MediaType
	}
	if mediaType == "" {
		mediaType = ocispec.MediaTypeImageManifest
	}
	d := digest.FromBytes(raw)
	resp, err := repo.do(ctx, request{method: http.MethodPut, url: repo.url("/manifests/" + ref.tagOrDigest()),
		header: http.Header{"Content-Type": {mediaType}}, body: func() io.Reader { return bytes.NewReader(raw) }, length: int64(len(raw))})
	if err != nil {
		return nil, fmt.Errorf("push manifest: %w", err)
	}
	resp.Body.Close()
	if claimed := resp.Header.Get("Docker-Content-Digest"); claimed != "" && claimed != d.String() {
		return nil, fmt.Errorf("push manifest: registry stored digest %s, expected %s", claimed, d)
	}
	p.Status("", fmt.Sprintf("%s: digest: %s size: %d", ref.tagOrDigest(), d, len(raw)))
	p.Aux(map[string]any{"Tag": ref.Tag, "Digest": d.String(), "Size": len(raw)})
	return &PushResult{Digest: d, Size: len(raw)}, nil
}

func changed(a, b []ocispec.Descriptor) bool {
	for i := range a {
		if a[i].Digest != b[i].Digest || a[i].MediaType != b[i].MediaType {
			return true
		}
	}
	return false
}

// blobExists HEADs a blob.
func (r *repository) blobExists(ctx context.Context, d digest.Digest) (bool, error) {
	resp, err := r.do(ctx, request{method: http.MethodHead, url: r.url("/blobs/" + d.String())}, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// startUpload begins an upload session, or mounts d from one of from:
// mounted reports the repository it came from.
func (r *repository) startUpload(ctx context.Context, d digest.Digest, from []string) (location, mounted string, err error) {
	for _, f := range from {
		u := r.url("/blobs/uploads/") + "?mount=" + url.QueryEscape(d.String()) + "&from=" + url.QueryEscape(f)
		resp, err := r.do(ctx, request{method: http.MethodPost, url: u})
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			return "", f, nil
		}
		if loc := resp.Header.Get("Location"); loc != "" {
			// Not mountable: the registry opened a session instead.
			l, err := r.resolveLocation(resp.Request.URL, loc)
			return l, "", err
		}
	}
	resp, err := r.do(ctx, request{method: http.MethodPost, url: r.url("/blobs/uploads/")})
	if err != nil {
		return "", "", err
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", "", fmt.Errorf("start upload: registry sent no Location")
	}
	l, err := r.resolveLocation(resp.Request.URL, loc)
	return l, "", err
}

func (r *repository) resolveLocation(base *url.URL, loc string) (string, error) {
	u, err := base.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("upload location %q: %w", loc, err)
	}
	return u.String(), nil
}

func withDigest(loc string, d digest.Digest) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + "digest=" + url.QueryEscape(d.String())
}

// pushBlobBytes uploads a small blob unless present.
func (r *repository) pushBlobBytes(ctx context.Context, d digest.Digest, b []byte) error {
	if ok, err := r.blobExists(ctx, d); err != nil || ok {
		return err
	}
	loc, _, err := r.startUpload(ctx, d, nil)
	if err != nil {
		return err
	}
	resp, err := r.do(ctx, request{method: http.MethodPut, url: withDigest(loc, d), body: func() io.Reader { return bytes.NewReader(b) }, length: int64(len(b)),
		header: http.Header{"Content-Type": {"application/octet-stream"}}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// pushLayer gets one layer into the repository and returns its descriptor as pushed.
func (r *repository) pushLayer(ctx context.Context, l image.Layer, desc ocispec.Descriptor, id string, cache CompressionCache, from []string, p *Progress) (ocispec.Descriptor, error) {
	diffID, err := l.DiffID()
	if err != nil {
		return desc, err
	}
	compress := desc.MediaType == ocispec.MediaTypeImageLayer || desc.MediaType == "application/vnd.docker.image.rootfs.diff.tar"
	target := desc
	if compress {
		if cache == nil {
			target = ocispec.Descriptor{}
		} else if d, ok := cache.CompressedLayer(ctx, diffID); ok {
			target = d
		} else {
			target = ocispec.Descriptor{}
		}
	}
	if target.Digest != "" {
		ok, err := r.blobExists(ctx, target.Digest)
		if err != nil {
			return desc, fmt.Errorf("push layer %s: %w", id, err)
		}
		if ok {
			p.Event(id, "Layer already exists")
			return target, nil
		}
	}
	var loc, mounted string
	if target.Digest != "" {
		loc, mounted, err = r.startUpload(ctx, target.Digest, from)
	} else {
		loc, _, err = r.startUpload(ctx, "", nil)
	}
	if err != nil {
		return desc, fmt.Errorf("push layer %s: %w", id, err)
	}
	if mounted != "" {
		p.Event(id, "Mounted from "+mounted)
		return target, nil
	}
	if !compress {
		rc, err := l.Compressed()
		if err != nil {
			return desc, err
		}
		defer rc.Close()
		pr := &progressReader{r: rc, p: p, id: id, action: "Pushing", total: desc.Size}
		resp, err := r.do(ctx, request{method: http.MethodPut, url: withDigest(loc, desc.Digest), bodyOnce: pr, length: desc.Size,
			header: http.Header{"Content-Type": {"application/octet-stream"}}})
		if err != nil {
			return desc, fmt.Errorf("push layer %s: %w", id, err)
		}
		resp.Body.Close()
		p.Event(id, "Pushed")
		return desc, nil
	}
	// Compress on the fly with parallel gzip; the digest is known only at
	// the end, so the data goes in one PATCH and the PUT closes the upload.
	tarSize, _ := l.Size()
	rc, err := l.Uncompressed()
	if err != nil {
		return desc, err
	}
	defer rc.Close()
	pr, pw := io.Pipe()
	go func() {
		zw := pgzip.NewWriter(pw)
		zw.SetConcurrency(1<<20, runtime.GOMAXPROCS(0))
		src := &progressReader{r: rc, p: p, id: id, action: "Pushing", total: tarSize}
		_, err := io.Copy(zw, src)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	h := digest.SHA256.Digester()
	counter := &countingHash{h: h.Hash()}
	body := io.TeeReader(pr, counter)
	resp, err := r.do(ctx, request{method: http.MethodPatch, url: loc, bodyOnce: body, header: http.Header{"Content-Type": {"application/octet-stream"}}})
	pr.CloseWithError(errors.New("upload ended"))
	if err != nil {
		return desc, fmt.Errorf("push layer %s: %w", id, err)
	}
	resp.Body.Close()
	next := resp.Header.Get("Location")
	if next == "" {
		next = loc
	} else if next, err = r.resolveLocation(resp.Request.URL, next); err != nil {
		return desc, err
	}
	d := h.Digest()
	resp, err = r.do(ctx, request{method: http.MethodPut, url: withDigest(next, d)})
	if err != nil {
		return desc, fmt.Errorf("push layer %s: %w", id, err)
	}
	resp.Body.Close()
	out := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: counter.n}
	if cache != nil {
		cache.SetCompressedLayer(ctx, diffID, out)
	}
	p.Event(id, "Pushed")
	return out, nil
}

type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

var _ = strconv.Itoa
var _ = errdefs.IsNotFound
