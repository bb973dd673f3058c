package distribution

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/distribution/reference"
	"github.com/klauspost/pgzip"
	"github.com/moby/moby/client/pkg/progress"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// pushedBlob remembers the compressed form a push made of an uncompressed
// layer, so a later push can check for it before compressing again.
type pushedBlob struct {
	desc ocispec.Descriptor
}

// PushOptions controls Push.
type PushOptions struct {
	Auth AuthConfig
}

// PushResult is one pushed tag.
type PushResult struct {
	Tag    string
	Digest digest.Digest
	Size   int
}

// maxParallelUploads bounds concurrent blob uploads, as dockerd does.
const maxParallelUploads = 5

// Push uploads ref (every local tag of the repository when ref has no
// tag) to its registry, writing Docker's progress messages to out.
func (c *Client) Push(ctx context.Context, store *image.Store, ref string, opts PushOptions, out progress.Output) ([]PushResult, error) {
	if out == nil {
		out = progress.DiscardOutput()
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid reference format: %w", err))
	}
	if _, ok := named.(reference.Digested); ok {
		return nil, errdefs.InvalidParameterf("cannot push a digest reference")
	}
	var tags []string
	if t, ok := named.(reference.Tagged); ok {
		tags = []string{t.Tag()}
	} else {
		imgs, err := store.List(ctx)
		if err != nil {
			return nil, err
		}
		prefix := named.Name() + ":"
		for _, img := range imgs {
			for _, rt := range img.RepoTags {
				if strings.HasPrefix(rt, prefix) {
					tags = append(tags, strings.TrimPrefix(rt, prefix))
				}
			}
		}
		if len(tags) == 0 {
			return nil, errdefs.NotFoundf("An image does not exist locally with the tag: %s", reference.FamiliarName(named))
		}
	}
	repoName := reference.TrimNamed(named)
	// Validate the first tag before any output, so a missing image is a
	// plain error as with dockerd.
	if _, err := store.Get(ctx, repoName.String()+":"+tags[0]); err != nil {
		if errdefs.IsNotFound(err) {
			return nil, errdefs.NotFoundf("An image does not exist locally with the tag: %s", reference.FamiliarName(named))
		}
		return nil, err
	}
	progress.Message(out, "", "The push refers to repository ["+repoName.String()+"]")
	eps := c.endpoints(reference.Domain(named))
	ep := eps[len(eps)-1] // never push to a mirror
	var results []PushResult
	for _, tag := range tags {
		r, err := c.pushTag(ctx, store, ep, repoName, tag, opts, out)
		if err != nil {
			return results, err
		}
		results = append(results, *r)
	}
	return results, nil
}

func (c *Client) pushTag(ctx context.Context, store *image.Store, ep endpoint, repo reference.Named, tag string, opts PushOptions, out progress.Output) (*PushResult, error) {
	local := repo.String() + ":" + tag
	img, err := store.Get(ctx, local)
	if err != nil {
		return nil, err
	}
	view, err := store.View(ctx, img.ID.String())
	if err != nil {
		return nil, err
	}
	rawManifest, err := view.RawManifest()
	if err != nil {
		return nil, err
	}
	doc, err := DecodeManifest(rawManifest, "")
	if err != nil || doc.manifest == nil {
		return nil, fmt.Errorf("push %s: local manifest: %v", local, err)
	}
	layers, err := view.Layers()
	if err != nil {
		return nil, err
	}
	// Candidate sources for cross-repository mounts: other repositories
	// of the same registry this image came from or went to.
	var mountFrom []string
	for _, rd := range img.RepoDigests {
		if n, err := reference.ParseNormalizedNamed(rd); err == nil && reference.Domain(n) == reference.Domain(repo) && reference.Path(n) != reference.Path(repo) {
			mountFrom = append(mountFrom, reference.Path(n))
		}
	}
	s := c.newSession(ep, reference.Path(repo), opts.Auth, "pull,push", mountFrom...)

	descs := make([]ocispec.Descriptor, len(layers))
	errs := make([]error, len(layers))
	sem := make(chan struct{}, maxParallelUploads)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i, l := range layers {
		progress.Update(out, layerID(l), "Preparing")
		wg.Add(1)
		go func(i int, l image.Layer) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			d, err := c.pushLayer(ctx, s, l, doc.manifest.Layers[i], mountFrom, out)
			if err != nil {
				errs[i] = err
				cancel()
				return
			}
			descs[i] = d
		}(i, l)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && ctx.Err() == nil || err != nil && !isCanceled(err) {
			return nil, fmt.Errorf("push %s: %w", local, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rawConfig, err := view.RawConfigFile()
	if err != nil {
		return nil, err
	}
	if err := s.uploadSmall(ctx, doc.manifest.Config.Digest, rawConfig); err != nil {
		return nil, fmt.Errorf("push %s: config: %w", local, err)
	}
	// The local manifest goes as is when every layer went as stored;
	// otherwise (layers compressed for the push) a new one describes them.
	same := true
	for i, d := range descs {
		if d.Digest != doc.manifest.Layers[i].Digest {
			same = false
		}
	}
	mt := doc.mediaType
	if !same {
		m := *doc.manifest
		m.Layers = descs
		if m.MediaType == "" {
			m.MediaType = ocispec.MediaTypeImageManifest
		}
		mt = m.MediaType
		if rawManifest, err = json.Marshal(m); err != nil {
			return nil, err
		}
	}
	dg := digest.FromBytes(rawManifest)
	resp, err := s.do(ctx, request{
		method: "PUT", url: "/v2/" + s.repo + "/manifests/" + tag,
		header: http.Header{"Content-Type": {mt}},
		body:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(rawManifest)), nil },
		retry:  true,
	})
	if err != nil {
		return nil, fmt.Errorf("push %s: manifest: %w", local, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("push %s: manifest: %w", local, registryError(resp))
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && digest.Digest(h) != dg {
		return nil, fmt.Errorf("push %s: registry stored the manifest as %s, not %s", local, h, dg)
	}
	if err := store.Tag(ctx, img.ID, repo.String()+"@"+dg.String()); err != nil {
		return nil, err
	}
	progress.Message(out, "", fmt.Sprintf("%s: digest: %s size: %d", tag, dg, len(rawManifest)))
	res := &PushResult{Tag: tag, Digest: dg, Size: len(rawManifest)}
	progress.Aux(out, map[string]any{"Tag": tag, "Digest": dg.String(), "Size": len(rawManifest)})
	return res, nil
}

func isCanceled(err error) bool {
	return err != nil && (err == context.Canceled || strings.Contains(err.Error(), context.Canceled.Error()))
}

// layerID is the id a push shows for a layer: its diff ID, as dockerd.
func layerID(l image.Layer) string {
	d, _ := l.DiffID()
	return shortID(d)
}

func compressed(mt string) bool {
	return strings.HasSuffix(mt, "gzip") || strings.HasSuffix(mt, "zstd")
}

// pushLayer makes sure the registry has layer l, returning the
// descriptor the pushed manifest names it by.
func (c *Client) pushLayer(ctx context.Context, s *session, l image.Layer, desc ocispec.Descriptor, mountFrom []string, out progress.Output) (ocispec.Descriptor, error) {
	id := layerID(l)
	target := desc
	if !compressed(desc.MediaType) {
		diffID, _ := l.DiffID()
		c.mu.Lock()
		pb, ok := c.pushed[diffID.String()]
		c.mu.Unlock()
		if !ok {
			return c.compressAndUpload(ctx, s, l, desc, out)
		}
		target = pb.desc
	}
	if ok, err := s.blobExists(ctx, target.Digest); err != nil {
		return target, err
	} else if ok {
		progress.Update(out, id, "Layer already exists")
		return target, nil
	}
	for _, from := range mountFrom {
		if ok, err := s.mount(ctx, target.Digest, from); err == nil && ok {
			progress.Update(out, id, "Mounted from "+from)
			return target, nil
		}
	}
	if !compressed(desc.MediaType) {
		return c.compressAndUpload(ctx, s, l, desc, out)
	}
	rc, err := l.Compressed()
	if err != nil {
		return target, err
	}
	defer rc.Close()
	pr := progress.NewProgressReader(rc, out, desc.Size, id, "Pushing")
	if err := s.upload(ctx, pr, target.Digest, target.Size); err != nil {
		return target, err
	}
	progress.Update(out, id, "Pushed")
	return target, nil
}

// compressAndUpload gzips an uncompressed layer with parallel gzip while
// streaming it to the registry, hashing as it goes.
func (c *Client) compressAndUpload(ctx context.Context, s *session, l image.Layer, desc ocispec.Descriptor, out progress.Output) (ocispec.Descriptor, error) {
	id := layerID(l)
	rc, err := l.Uncompressed()
	if err != nil {
		return desc, err
	}
	defer rc.Close()
	pr, pw := io.Pipe()
	h := digest.SHA256.Digester()
	cnt := &counter{}
	go func() {
		zw := pgzip.NewWriter(io.MultiWriter(pw, h.Hash(), cnt))
		zw.SetConcurrency(1<<20, 4)
		src := progress.NewProgressReader(rc, out, desc.Size, id, "Pushing")
		_, err := io.Copy(zw, src)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	loc, err := s.startUpload(ctx)
	if err != nil {
		pr.CloseWithError(err)
		return desc, err
	}
	resp, err := s.do(ctx, request{
		method: "PATCH", url: loc,
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		body:   func() (io.ReadCloser, error) { return pr, nil },
	})
	if err != nil {
		pr.CloseWithError(err)
		return desc, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent {
		return desc, registryError(resp)
	}
	if l := resp.Header.Get("Location"); l != "" {
		loc = l
	}
	dg := h.Digest()
	if err := s.finishUpload(ctx, loc, dg, nil); err != nil {
		return desc, err
	}
	mt := ocispec.MediaTypeImageLayerGzip
	if strings.HasPrefix(desc.MediaType, "application/vnd.docker.") {
		mt = MediaTypeDockerLayerGzip
	}
	nd := ocispec.Descriptor{MediaType: mt, Digest: dg, Size: cnt.n}
	diffID, _ := l.DiffID()
	c.mu.Lock()
	c.pushed[diffID.String()] = pushedBlob{desc: nd}
	c.mu.Unlock()
	progress.Update(out, id, "Pushed")
	return nd, nil
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func (s *session) blobExists(ctx context.Context, d digest.Digest) (bool, error) {
	resp, err := s.do(ctx, request{method: "HEAD", url: "/v2/" + s.repo + "/blobs/" + d.String(), retry: true})
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, registryError(resp)
}

// mount asks the registry to link blob d from repository from.
func (s *session) mount(ctx context.Context, d digest.Digest, from string) (bool, error) {
	q := url.Values{"mount": {d.String()}, "from": {from}}
	resp, err := s.do(ctx, request{method: "POST", url: "/v2/" + s.repo + "/blobs/uploads/?" + q.Encode()})
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return true, nil
	}
	if resp.StatusCode == http.StatusAccepted {
		// Mount refused, an upload session opened instead: cancel it.
		if loc := resp.Header.Get("Location"); loc != "" {
			if r, err := s.do(ctx, request{method: "DELETE", url: s.absolute(loc)}); err == nil {
				r.Body.Close()
			}
		}
	}
	return false, nil
}

func (s *session) absolute(loc string) string {
	if strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://") {
		return loc
	}
	if !strings.HasPrefix(loc, "/") {
		loc = "/" + loc
	}
	return s.ep.base + loc
}

func (s *session) startUpload(ctx context.Context) (string, error) {
	resp, err := s.do(ctx, request{method: "POST", url: "/v2/" + s.repo + "/blobs/uploads/", retry: true})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "", registryError(resp)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("registry opened an upload without a Location")
	}
	return s.absolute(loc), nil
}

// finishUpload PUTs the last chunk (body, may be nil) with the digest.
func (s *session) finishUpload(ctx context.Context, loc string, d digest.Digest, body []byte) error {
	u, err := url.Parse(s.absolute(loc))
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	req := request{method: "PUT", url: u.String(), header: http.Header{"Content-Type": {"application/octet-stream"}}}
	if body != nil {
		req.body = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.length = int64(len(body))
	}
	resp, err := s.do(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("upload %s: %w", d, registryError(resp))
	}
	return nil
}

// upload streams a blob of known digest and size in one request.
func (s *session) upload(ctx context.Context, r io.Reader, d digest.Digest, size int64) error {
	loc, err := s.startUpload(ctx)
	if err != nil {
		return err
	}
	u, _ := url.Parse(loc)
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	resp, err := s.do(ctx, request{
		method: "PUT", url: u.String(),
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		length: size,
		body:   func() (io.ReadCloser, error) { return io.NopCloser(r), nil },
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("upload %s: %w", d, registryError(resp))
	}
	return nil
}

// uploadSmall uploads an in-memory blob unless the registry has it.
func (s *session) uploadSmall(ctx context.Context, d digest.Digest, b []byte) error {
	if ok, err := s.blobExists(ctx, d); err != nil {
		return err
	} else if ok {
		return nil
	}
	loc, err := s.startUpload(ctx)
	if err != nil {
		return err
	}
	return s.finishUpload(ctx, loc, d, b)
}
