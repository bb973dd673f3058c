package distribution

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of manifests this package reads.
const (
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeSchema1        = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest, MediaTypeDockerList, MediaTypeDockerManifest,
}, ", ")

// maxManifestSize bounds manifests and configs read into memory.
const maxManifestSize = 8 << 20

func (r *Repository) scope(actions string) string { return "repository:" + r.name + ":" + actions }

func (r *Repository) url(parts ...string) string {
	return r.base + "/v2/" + r.name + "/" + strings.Join(parts, "/")
}

// Manifest fetches a manifest or index by tag or digest. Its digest is
// computed from the bytes; a manifest asked for by digest must match it.
func (r *Repository) Manifest(ctx context.Context, ref string) (data []byte, mediaType string, dgst digest.Digest, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url("manifests", ref), nil)
	if err != nil {
		return nil, "", "", err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := r.do(req, r.scope("pull"))
	if err != nil {
		return nil, "", "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusNotFound {
			return nil, "", "", errdefs.NotFound(fmt.Errorf("manifest for %s/%s:%s not found: manifest unknown", r.host, r.name, ref))
		}
		return nil, "", "", registryError("fetch manifest "+ref, resp)
	}
	data, err = io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, "", "", fmt.Errorf("fetch manifest %s: %w", ref, err)
	}
	if len(data) > maxManifestSize {
		return nil, "", "", errdefs.InvalidParameterf("manifest %s is larger than %d bytes", ref, maxManifestSize)
	}
	dgst = digest.FromBytes(data)
	if want, err := digest.Parse(ref); err == nil {
		if want.Algorithm() != digest.SHA256 {
			dgst = want.Algorithm().FromBytes(data)
		}
		if dgst != want {
			return nil, "", "", errdefs.InvalidParameterf("manifest verification failed for digest %s: got %s", want, dgst)
		}
	}
	// A registry naming another digest than what it sent is lying (or
	// corrupt): refuse rather than record either.
	if claimed, err := digest.Parse(resp.Header.Get("Docker-Content-Digest")); err == nil && claimed.Algorithm() == dgst.Algorithm() && claimed != dgst {
		return nil, "", "", errdefs.InvalidParameterf("manifest %s: the registry says its digest is %s but the content is %s", ref, claimed, dgst)
	}
	mediaType = resp.Header.Get("Content-Type")
	if i := strings.IndexByte(mediaType, ';'); i >= 0 {
		mediaType = strings.TrimSpace(mediaType[:i])
	}
	return data, mediaType, dgst, nil
}

// Blob opens a blob; the caller verifies what it reads.
func (r *Repository) Blob(ctx context.Context, d digest.Digest) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url("blobs", d.String()), nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := r.do(req, r.scope("pull"))
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, 0, registryError("fetch blob "+d.String(), resp)
	}
	return resp.Body, resp.ContentLength, nil
}

// BlobBytes reads a small blob (a config) whole and verifies it.
func (r *Repository) BlobBytes(ctx context.Context, d digest.Digest) ([]byte, error) {
	rc, _, err := r.Blob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch blob %s: %w", d, err)
	}
	if len(data) > maxManifestSize {
		return nil, errdefs.InvalidParameterf("blob %s is larger than %d bytes", d, maxManifestSize)
	}
	if err := d.Validate(); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	if got := d.Algorithm().FromBytes(data); got != d {
		return nil, errdefs.InvalidParameterf("blob %s: digest mismatch: got %s", d, got)
	}
	return data, nil
}

// BlobExists tells whether the repository has blob d.
func (r *Repository) BlobExists(ctx context.Context, d digest.Digest) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, r.url("blobs", d.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := r.do(req, r.scope("pull,push"))
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
	return false, registryError("check blob "+d.String(), resp)
}

// Mount asks the registry to link blob d from repository from (same
// registry) into this one; false when it could not.
func (r *Repository) Mount(ctx context.Context, d digest.Digest, from string) (bool, error) {
	u := r.url("blobs", "uploads/") + "?" + url.Values{"mount": {d.String()}, "from": {from}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := r.do(req, r.scope("pull,push")+" repository:"+from+":pull")
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return true, nil
	}
	if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusAccepted && loc != "" {
		// The registry started an upload instead: cancel it.
		if cu, err := resp.Request.URL.Parse(loc); err == nil {
			if req, err := http.NewRequestWithContext(ctx, http.MethodDelete, cu.String(), nil); err == nil {
				if resp, err := r.do(req, r.scope("pull,push")); err == nil {
					resp.Body.Close()
				}
			}
		}
	}
	return false, nil
}

// PutBlob uploads blob d of size bytes, read from open (called again if
// an authentication challenge makes the upload start over).
func (r *Repository) PutBlob(ctx context.Context, d digest.Digest, size int64, open func() (io.ReadCloser, error)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url("blobs", "uploads/"), nil)
	if err != nil {
		return err
	}
	resp, err := r.do(req, r.scope("pull,push"))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return registryError("start upload of "+d.String(), resp)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return fmt.Errorf("upload %s: bad Location: %w", d, err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	body, err := open()
	if err != nil {
		return err
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), body)
	if err != nil {
		body.Close()
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.GetBody = open
	resp, err = r.do(req, r.scope("pull,push"))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return registryError("upload "+d.String(), resp)
	}
	return nil
}

// PutManifest uploads a manifest under tag (or its digest when tag is "").
func (r *Repository) PutManifest(ctx context.Context, tag, mediaType string, data []byte) error {
	ref := tag
	if ref == "" {
		ref = digest.FromBytes(data).String()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.url("manifests", ref), bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mediaType)
	req.ContentLength = int64(len(data))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	resp, err := r.do(req, r.scope("pull,push"))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return registryError("put manifest "+ref, resp)
	}
	return nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
