package image

import (
	"context"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// PresentLayers returns how many of the bottom layers of an image with
// these diff IDs and blob digests are already stored (snapshot and blob):
// the ones Put will not read again. Pull reports them as "Already exists".
func (s *Store) PresentLayers(ctx context.Context, diffIDs, blobs []digest.Digest) int {
	chain := chainIDs(diffIDs)
	have := 0
	s.db.View(func(tx *bolt.Tx) error {
		for have < len(chain) && have < len(blobs) {
			if _, err := getSnapshot(tx, chain[have]); err != nil || !s.content.exists(blobs[have]) {
				break
			}
			have++
		}
		return nil
	})
	return have
}

// HasBlob reports whether the content store holds blob d.
func (s *Store) HasBlob(d digest.Digest) bool { return s.content.exists(d) }
