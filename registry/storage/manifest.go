package storage

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// MaxManifestSize bounds a manifest body; larger ones are refused.
const MaxManifestSize = 4 << 20

// Media types this registry understands as manifests.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// Descriptor is the subset of an OCI descriptor the registry reads.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	URLs         []string          `json:"urls,omitempty"`
	Data         []byte            `json:"data,omitempty"`
}

// Manifest is the union of the image manifest and index fields the
// registry needs: what it references, its subject and its artifact type.
type Manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        *Descriptor       `json:"config,omitempty"`
	Layers        []Descriptor      `json:"layers,omitempty"`
	Manifests     []Descriptor      `json:"manifests,omitempty"`
	Subject       *Descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// IsIndex reports whether the manifest is an index (or Docker list).
func (m *Manifest) IsIndex() bool {
	return m.MediaType == MediaTypeOCIIndex || m.MediaType == MediaTypeDockerList
}

// EffectiveArtifactType is what the referrers API reports for the manifest:
// artifactType, else the config media type for image manifests.
func (m *Manifest) EffectiveArtifactType() string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	if m.Config != nil && !m.IsIndex() {
		return m.Config.MediaType
	}
	return ""
}

// ParseManifest parses and checks a manifest body pushed with the given
// Content-Type. The media type is taken from the body when present (and
// must agree with contentType), else from contentType.
func ParseManifest(contentType string, body []byte) (*Manifest, error) {
	if len(body) > MaxManifestSize {
		return nil, fmt.Errorf("%w: manifest of %d bytes exceeds the %d byte limit", ErrTooLarge, len(body), MaxManifestSize)
	}
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifestInvalid, err)
	}
	ct := contentType
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	switch {
	case m.MediaType == "" && ct == "":
		// Guess from the shape, as clients that omit both expect.
		if m.Manifests != nil {
			m.MediaType = MediaTypeOCIIndex
		} else {
			m.MediaType = MediaTypeOCIManifest
		}
	case m.MediaType == "":
		m.MediaType = ct
	case ct != "" && ct != m.MediaType:
		return nil, fmt.Errorf("%w: mediaType %q does not match Content-Type %q", ErrManifestInvalid, m.MediaType, ct)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: unsupported schemaVersion %d", ErrManifestInvalid, m.SchemaVersion)
	}
	switch m.MediaType {
	case MediaTypeOCIManifest, MediaTypeDockerManifest:
		if m.Config == nil {
			return nil, fmt.Errorf("%w: image manifest without config", ErrManifestInvalid)
		}
		if m.Manifests != nil {
			return nil, fmt.Errorf("%w: image manifest with manifests list", ErrManifestInvalid)
		}
	case MediaTypeOCIIndex, MediaTypeDockerList:
		if m.Config != nil || m.Layers != nil {
			return nil, fmt.Errorf("%w: index with config or layers", ErrManifestInvalid)
		}
	default:
		return nil, fmt.Errorf("%w: unsupported manifest media type %q", ErrManifestInvalid, m.MediaType)
	}
	for _, d := range m.descriptors() {
		if err := checkDescriptor(d); err != nil {
			return nil, err
		}
	}
	if m.Subject != nil {
		if err := checkDescriptor(*m.Subject); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

func (m *Manifest) descriptors() []Descriptor {
	var ds []Descriptor
	if m.Config != nil {
		ds = append(ds, *m.Config)
	}
	ds = append(ds, m.Layers...)
	return append(ds, m.Manifests...)
}

func checkDescriptor(d Descriptor) error {
	if _, err := ParseDigest(string(d.Digest)); err != nil {
		return fmt.Errorf("%w: descriptor digest: %v", ErrManifestInvalid, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("%w: descriptor %s has negative size", ErrManifestInvalid, d.Digest)
	}
	if d.Data != nil {
		if int64(len(d.Data)) != d.Size || d.Digest.Algorithm().FromBytes(d.Data) != d.Digest {
			return fmt.Errorf("%w: descriptor %s data does not match its digest", ErrManifestInvalid, d.Digest)
		}
	}
	return nil
}

// nonDistributable reports whether a layer may legitimately be absent from
// the registry (foreign layers, or ones with external URLs).
func nonDistributable(d Descriptor) bool {
	return len(d.URLs) > 0 || strings.Contains(d.MediaType, "nondistributable") ||
		strings.Contains(d.MediaType, "foreign")
}
