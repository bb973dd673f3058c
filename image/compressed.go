package image

import (
	"context"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// CompressedLayer returns the descriptor of the compressed form a layer
// had when last pushed, so a push can ask the registry before compressing.
func (s *Store) CompressedLayer(ctx context.Context, diffID digest.Digest) (ocispec.Descriptor, bool) {
	var d ocispec.Descriptor
	var ok bool
	s.db.View(func(tx *bolt.Tx) error {
		ok, _ = getJSON(tx.Bucket(bucketCompressed), diffID.String(), &d)
		return nil
	})
	return d, ok && d.Digest != ""
}

// SetCompressedLayer records the compressed form of a layer (see CompressedLayer).
func (s *Store) SetCompressedLayer(ctx context.Context, diffID digest.Digest, desc ocispec.Descriptor) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketCompressed), diffID.String(), desc)
	})
}
