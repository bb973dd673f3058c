package storage

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Repository names and tags follow the distribution-spec grammar. The name
// grammar admits no "..", no leading "/", no "_" at the start of a component
// and nothing but [a-z0-9._-/], so a valid name is always a safe relative path
// that cannot collide with the store's own "_"-prefixed directories.
var (
	nameRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	})
	tagRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`) })
)

// maxNameLen bounds a repository name (the spec advises clients to stay
// under 255 characters including the host).
const maxNameLen = 255

// ValidateName reports whether name is a valid repository name.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > maxNameLen || !nameRE().MatchString(name) {
		return fmt.Errorf("%w: %q", ErrNameInvalid, name)
	}
	return nil
}

// ValidateTag reports whether tag is a valid tag.
func ValidateTag(tag string) error {
	if !tagRE().MatchString(tag) {
		return fmt.Errorf("%w: invalid tag %q", ErrManifestInvalid, tag)
	}
	return nil
}

// ParseDigest parses a digest with an algorithm this registry supports
// (sha256, sha512) and a well-formed encoded part. Anything else is a
// client mistake: ErrDigestInvalid.
func ParseDigest(s string) (digest.Digest, error) {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrDigestInvalid, s)
	}
	var n int
	switch alg {
	case "sha256":
		n = 64
	case "sha512":
		n = 128
	default:
		return "", fmt.Errorf("%w: unsupported algorithm %q", ErrDigestInvalid, alg)
	}
	if len(enc) != n {
		return "", fmt.Errorf("%w: %q", ErrDigestInvalid, s)
	}
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", fmt.Errorf("%w: %q", ErrDigestInvalid, s)
		}
	}
	return digest.Digest(s), nil
}

// IsDigest reports whether ref looks like a digest rather than a tag (tags
// cannot contain ':').
func IsDigest(ref string) bool { return strings.Contains(ref, ":") }

func newHash(alg digest.Algorithm) (hash.Hash, error) {
	switch alg {
	case digest.SHA256:
		return sha256.New(), nil
	case digest.SHA512:
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("%w: unsupported algorithm %q", ErrDigestInvalid, alg)
}

// Errors the HTTP layer maps to OCI error codes.
var (
	ErrNameInvalid         = errors.New("invalid repository name")
	ErrNameUnknown         = errors.New("repository name not known to registry")
	ErrDigestInvalid       = errors.New("provided digest did not match uploaded content")
	ErrBlobUnknown         = errors.New("blob unknown to registry")
	ErrUploadUnknown       = errors.New("blob upload unknown to registry")
	ErrUploadInvalid       = errors.New("blob upload invalid")
	ErrRangeInvalid        = errors.New("requested range not satisfiable")
	ErrManifestUnknown     = errors.New("manifest unknown")
	ErrManifestInvalid     = errors.New("manifest invalid")
	ErrManifestBlobUnknown = errors.New("manifest references a manifest or blob unknown to registry")
	ErrSizeInvalid         = errors.New("provided length did not match content length")
	ErrTooLarge            = errors.New("content too large")
)
