package distribution

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types berth reads and writes besides the OCI ones.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// acceptManifests is the Accept header of manifest requests.
var acceptManifests = strings.Join([]string{
	ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifestList, MediaTypeDockerManifest,
}, ", ")

// Limits on what a registry may send before it is refused.
const (
	maxManifestSize = 4 << 20
	maxConfigSize   = 8 << 20
	maxLayers       = 512
)

// rawManifest is the fields common to manifests and indexes, enough to
// tell which one a document is.
type rawManifest struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
}

// decoded is a parsed manifest document: an image manifest or an index.
type decoded struct {
	mediaType string
	manifest  *ocispec.Manifest // set for image manifests
	index     *ocispec.Index    // set for indexes and manifest lists
}

// DecodeManifest parses and validates a manifest or index; contentType is
// the Content-Type the registry sent (used when the document has no
// mediaType field).
func DecodeManifest(b []byte, contentType string) (*decoded, error) {
	var raw rawManifest
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("manifest: %w", err))
	}
	mt := raw.MediaType
	if mt == "" {
		mt, _, _ = strings.Cut(contentType, ";")
		mt = strings.TrimSpace(mt)
	}
	if mt == "" || mt == "application/json" || mt == "text/plain" {
		switch {
		case raw.Manifests != nil && raw.Config == nil:
			mt = ocispec.MediaTypeImageIndex
		case raw.Config != nil:
			mt = ocispec.MediaTypeImageManifest
		}
	}
	if raw.SchemaVersion != 2 {
		return nil, errdefs.InvalidParameterf("manifest: unsupported schema version %d (schema 1 manifests are not supported)", raw.SchemaVersion)
	}
	switch mt {
	case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
		if raw.Config == nil {
			return nil, errdefs.InvalidParameterf("manifest: no config")
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("manifest: %w", err))
		}
		if err := checkDescriptor(m.Config, maxConfigSize); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("manifest config: %w", err))
		}
		if len(m.Layers) > maxLayers {
			return nil, errdefs.InvalidParameterf("manifest: %d layers is more than %d", len(m.Layers), maxLayers)
		}
		for i, l := range m.Layers {
			if err := checkDescriptor(l, 0); err != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("manifest layer %d: %w", i, err))
			}
			if !supportedLayer(l.MediaType) {
				return nil, errdefs.InvalidParameterf("manifest layer %d: unsupported media type %q", i, l.MediaType)
			}
		}
		return &decoded{mediaType: mt, manifest: &m}, nil
	case ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList:
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("index: %w", err))
		}
		for i, d := range idx.Manifests {
			if err := checkDescriptor(d, maxManifestSize); err != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("index entry %d: %w", i, err))
			}
		}
		return &decoded{mediaType: mt, index: &idx}, nil
	}
	return nil, errdefs.InvalidParameterf("unsupported manifest media type %q", mt)
}

func checkDescriptor(d ocispec.Descriptor, max int64) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", d.Digest, err)
	}
	if d.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %s: only sha256 is supported", d.Digest)
	}
	if d.Size < 0 || (max > 0 && d.Size > max) {
		return fmt.Errorf("size %d of %s out of range", d.Size, d.Digest)
	}
	return nil
}

func supportedLayer(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		MediaTypeDockerLayerGzip, "application/vnd.docker.image.rootfs.diff.tar":
		return true
	}
	return false
}

// Platform is the platform a pull selects from an index.
type Platform struct {
	OS, Architecture, Variant string
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// HostPlatform is the platform of this machine.
func HostPlatform() Platform {
	p := Platform{OS: "linux", Architecture: runtime.GOARCH}
	switch runtime.GOARCH {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = "v7"
	}
	return p
}

// ParsePlatform parses "os/arch[/variant]"; "" is the host's.
func ParsePlatform(s string) (Platform, error) {
	if s == "" {
		return HostPlatform(), nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Platform{}, errdefs.InvalidParameterf("invalid platform %q: want os/arch[/variant]", s)
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	if p.Architecture == "x86_64" {
		p.Architecture = "amd64"
	}
	if p.Architecture == "aarch64" {
		p.Architecture = "arm64"
	}
	if p.Architecture == "arm64" && p.Variant == "" {
		p.Variant = "v8"
	}
	return p, nil
}

// selectManifest picks the entry of idx for want: same OS and
// architecture, same variant when both name one (arm64's "v8" is implied).
func selectManifest(idx *ocispec.Index, want Platform) (ocispec.Descriptor, error) {
	var fallback *ocispec.Descriptor
	for i, d := range idx.Manifests {
		if d.Platform == nil {
			continue
		}
		p := d.Platform
		if p.OS != want.OS || p.Architecture != want.Architecture {
			continue
		}
		v := p.Variant
		if v == "" && p.Architecture == "arm64" {
			v = "v8"
		}
		if v == want.Variant {
			return d, nil
		}
		if (want.Variant == "" || v == "") && fallback == nil {
			fallback = &idx.Manifests[i]
		}
	}
	if fallback != nil {
		return *fallback, nil
	}
	return ocispec.Descriptor{}, errdefs.NotFoundf("no matching manifest for %s in the manifest list entries", want)
}

// decodeConfig checks the fields a pull relies on.
func decodeConfig(b []byte) (*imageConfig, error) {
	var c imageConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("image config: %w", err))
	}
	for i, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("image config diff ID %d: %w", i, err))
		}
	}
	return &c, nil
}

type imageConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
	RootFS       struct {
		Type    string          `json:"type"`
		DiffIDs []digest.Digest `json:"diff_ids"`
	} `json:"rootfs"`
}
