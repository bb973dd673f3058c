package distribution

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of Docker's schema 2 (OCI's are in ocispec).
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeDockerForeign      = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	mediaTypeSchema1            = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeSchema1Signed      = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// acceptManifests is the Accept header of manifest requests.
var acceptManifests = strings.Join([]string{
	ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifestList, MediaTypeDockerManifest,
}, ", ")

// Limits on what a registry may send before it is refused.
const (
	maxManifestSize = 4 << 20
	maxConfigSize   = 32 << 20
	maxLayers       = 512
)

// manifestKind tells an index from an image manifest.
type manifestKind int

const (
	kindImage manifestKind = iota
	kindIndex
)

// sniffManifest finds the kind of raw from its media type (header or body).
func sniffManifest(raw []byte, contentType string) (manifestKind, string, error) {
	var probe struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     json.RawMessage   `json:"manifests"`
		Config        json.RawMessage   `json:"config"`
		FSLayers      []json.RawMessage `json:"fsLayers"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return 0, "", errdefs.InvalidParameter(fmt.Errorf("manifest: %w", err))
	}
	mt := probe.MediaType
	if mt == "" {
		mt, _, _ = strings.Cut(contentType, ";")
		mt = strings.TrimSpace(mt)
	}
	switch {
	case mt == mediaTypeSchema1 || mt == mediaTypeSchema1Signed || probe.SchemaVersion == 1 || probe.FSLayers != nil:
		return 0, mt, errdefs.InvalidParameterf("manifest: Docker Image manifest version 2, schema 1 is not supported: push the image again with a current client")
	case mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList:
		return kindIndex, mt, nil
	case mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest:
		return kindImage, mt, nil
	case probe.Manifests != nil && probe.Config == nil:
		return kindIndex, ocispec.MediaTypeImageIndex, nil
	case probe.Config != nil:
		return kindImage, ocispec.MediaTypeImageManifest, nil
	}
	return 0, mt, errdefs.InvalidParameterf("manifest: unsupported media type %q", mt)
}

// ParseManifest decodes and checks an image manifest.
func ParseManifest(raw []byte) (*ocispec.Manifest, error) {
	if len(raw) > maxManifestSize {
		return nil, errdefs.InvalidParameterf("manifest: %d bytes is too large", len(raw))
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("manifest: %w", err))
	}
	if m.SchemaVersion != 2 {
		return nil, errdefs.InvalidParameterf("manifest: schema version %d is not supported", m.SchemaVersion)
	}
	if err := checkDescriptor(m.Config, "config"); err != nil {
		return nil, err
	}
	if len(m.Layers) > maxLayers {
		return nil, errdefs.InvalidParameterf("manifest: %d layers is too many", len(m.Layers))
	}
	for i, l := range m.Layers {
		if err := checkDescriptor(l, fmt.Sprintf("layer %d", i)); err != nil {
			return nil, err
		}
		if !supportedLayer(l.MediaType) {
			return nil, errdefs.InvalidParameterf("manifest: layer %d: unsupported media type %q", i, l.MediaType)
		}
	}
	return &m, nil
}

func supportedLayer(mt string) bool {
	switch mt {
	case MediaTypeDockerLayer, ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", mediaTypeDockerForeign:
		return true
	}
	return false
}

func checkDescriptor(d ocispec.Descriptor, what string) error {
	if err := d.Digest.Validate(); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("manifest: %s digest %q: %w", what, d.Digest, err))
	}
	if d.Digest.Algorithm() != digest.SHA256 {
		return errdefs.InvalidParameterf("manifest: %s digest %s: only sha256 is supported", what, d.Digest)
	}
	if d.Size < 0 {
		return errdefs.InvalidParameterf("manifest: %s has negative size", what)
	}
	return nil
}

// ParseIndex decodes and checks an image index or manifest list.
func ParseIndex(raw []byte) (*ocispec.Index, error) {
	if len(raw) > maxManifestSize {
		return nil, errdefs.InvalidParameterf("index: %d bytes is too large", len(raw))
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("index: %w", err))
	}
	if idx.SchemaVersion != 2 {
		return nil, errdefs.InvalidParameterf("index: schema version %d is not supported", idx.SchemaVersion)
	}
	for i, m := range idx.Manifests {
		if err := checkDescriptor(m, fmt.Sprintf("manifest %d", i)); err != nil {
			return nil, err
		}
	}
	return &idx, nil
}

// ParseConfig decodes an image config and checks it against the manifest's layer count.
func ParseConfig(raw []byte, layers int) (*dockerspec.DockerOCIImage, error) {
	if len(raw) > maxConfigSize {
		return nil, errdefs.InvalidParameterf("config: %d bytes is too large", len(raw))
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("config: %w", err))
	}
	if layers >= 0 && len(cfg.RootFS.DiffIDs) != layers {
		return nil, errdefs.InvalidParameterf("config has %d diff IDs but the manifest %d layers", len(cfg.RootFS.DiffIDs), layers)
	}
	for i, d := range cfg.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("config: diff ID %d: %w", i, err))
		}
	}
	return &cfg, nil
}

// Platform is a parsed "os/arch[/variant]".
type Platform = ocispec.Platform

// ParsePlatform parses "linux/arm64/v8"; "" is the host's platform.
func ParsePlatform(s string) (Platform, error) {
	if s == "" {
		return normalizePlatform(Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}), nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Platform{}, errdefs.InvalidParameterf("invalid platform %q: want os/arch[/variant]", s)
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return normalizePlatform(p), nil
}

func normalizePlatform(p Platform) Platform {
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	}
	switch {
	case p.Architecture == "arm64" && (p.Variant == "" || p.Variant == "8"):
		p.Variant = "v8"
	case p.Architecture == "arm" && p.Variant == "":
		p.Variant = "v7"
	case p.Architecture == "amd64" && p.Variant == "v1":
		p.Variant = ""
	}
	return p
}

// matchPlatform reports whether an index entry's platform serves want.
func matchPlatform(have *Platform, want Platform) bool {
	if have == nil {
		return false
	}
	h := normalizePlatform(*have)
	return h.OS == want.OS && h.Architecture == want.Architecture && (want.Variant == "" || h.Variant == want.Variant)
}

// selectManifest picks the manifest for want from an index, skipping
// attestation manifests (unknown/unknown).
func selectManifest(idx *ocispec.Index, want Platform) (ocispec.Descriptor, error) {
	for _, m := range idx.Manifests {
		if m.MediaType != "" && m.MediaType != ocispec.MediaTypeImageManifest && m.MediaType != MediaTypeDockerManifest {
			continue
		}
		if matchPlatform(m.Platform, want) {
			return m, nil
		}
	}
	s := want.OS + "/" + want.Architecture
	if want.Variant != "" {
		s += "/" + want.Variant
	}
	return ocispec.Descriptor{}, errdefs.NotFoundf("no matching manifest for %s in the manifest list entries", s)
}
