// Package distribution is berth's registry client: it resolves image
// references, authenticates (anonymous, basic, bearer tokens), pulls images
// into the image store while downloading and pushes local images, speaking
// the OCI distribution protocol over HTTPS (plain HTTP for loopback and
// insecure registries).
package distribution

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// DefaultHost is the registry the name "docker.io" stands for.
const (
	dockerHubDomain = "docker.io"
	dockerHubAPI    = "registry-1.docker.io"
)

// Ref is a parsed, normalised image reference.
type Ref struct {
	Named reference.Named
	// Domain is the registry as written in references ("docker.io", "127.0.0.1:5000").
	Domain string
	// Path is the repository inside the registry ("library/busybox").
	Path string
	// Tag is set unless the reference is by digest only.
	Tag string
	// Digest pins the manifest when set.
	Digest digest.Digest
}

// ParseRef parses s the way Docker does: "busybox" is
// docker.io/library/busybox:latest, "host:5000/a/b@sha256:..." is pinned.
func ParseRef(s string) (Ref, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, errdefs.InvalidParameter(fmt.Errorf("invalid reference format: %q: %w", s, err))
	}
	r := Ref{Domain: reference.Domain(named), Path: reference.Path(named)}
	if d, ok := named.(reference.Digested); ok {
		r.Digest = d.Digest()
		if err := r.Digest.Validate(); err != nil {
			return Ref{}, errdefs.InvalidParameter(fmt.Errorf("invalid reference %q: %w", s, err))
		}
	}
	if t, ok := named.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
		named = reference.TagNameOnly(named)
	}
	r.Named = named
	return r, nil
}

// WithTag parses repo and adds tag (the query form of the Engine API,
// fromImage=x&tag=y); a tag that is a digest pins instead.
func WithTag(repo, tag string) (Ref, error) {
	if tag == "" {
		return ParseRef(repo)
	}
	if strings.Contains(tag, ":") {
		return ParseRef(repo + "@" + tag)
	}
	return ParseRef(repo + ":" + tag)
}

// Name is the repository's full name without tag or digest ("docker.io/library/busybox").
func (r Ref) Name() string { return r.Named.Name() }

// Familiar is the short form the docker CLI prints ("busybox:latest").
func (r Ref) Familiar() string { return reference.FamiliarString(r.Named) }

// FamiliarName is the short repository name ("busybox", "127.0.0.1:5000/a/b").
func (r Ref) FamiliarName() string { return reference.FamiliarName(r.Named) }

// String is the full normalised form.
func (r Ref) String() string { return r.Named.String() }

// tagOrDigest is what goes after /manifests/ in a registry URL.
func (r Ref) tagOrDigest() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}

// apiHost is the host serving the registry API for a reference domain.
func apiHost(domain string) string {
	if domain == dockerHubDomain || domain == "index.docker.io" {
		return dockerHubAPI
	}
	return domain
}

// authKey is the key credentials are stored under in ~/.docker/config.json.
func authKey(domain string) string {
	if domain == dockerHubDomain || domain == dockerHubAPI || domain == "index.docker.io" {
		return "https://index.docker.io/v1/"
	}
	return domain
}
