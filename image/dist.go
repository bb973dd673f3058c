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

// DiskUsage returns the unpacked size of every layer snapshot and, per
// image, how many of its layer bytes other images share (docker system df).
func (s *Store) DiskUsage(ctx context.Context) (layers int64, shared map[digest.Digest]int64, err error) {
	shared = map[digest.Digest]int64{}
	err = s.db.View(func(tx *bolt.Tx) error {
		users := map[digest.Digest]int{}
		chains := map[digest.Digest][]digest.Digest{}
		tx.Bucket(bucketImages).ForEach(func(k, _ []byte) error {
			rec, err := getImageRecord(tx, digest.Digest(k))
			if err != nil {
				return nil
			}
			chains[digest.Digest(k)] = rec.Chain
			for _, c := range rec.Chain {
				users[c]++
			}
			return nil
		})
		sizes := map[digest.Digest]int64{}
		tx.Bucket(bucketSnapshots).ForEach(func(k, _ []byte) error {
			if snap, err := getSnapshot(tx, digest.Digest(k)); err == nil {
				sizes[digest.Digest(k)] = snap.Size
				layers += snap.Size
			}
			return nil
		})
		for id, chain := range chains {
			for _, c := range chain {
				if users[c] > 1 {
					shared[id] += sizes[c]
				}
			}
		}
		return nil
	})
	return layers, shared, err
}
