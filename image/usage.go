package image

import (
	"context"
	"encoding/json"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Usage is the disk usage of the image layers.
type Usage struct {
	// LayersSize is the unpacked size of every layer snapshot, each once.
	LayersSize int64
	// Shared is, per image, the size of its layers that other images use too.
	Shared map[digest.Digest]int64
}

// Usage reports layer disk usage (docker system df).
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	u := Usage{Shared: map[digest.Digest]int64{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		sizes := map[digest.Digest]int64{}
		tx.Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
			var rec snapshotRecord
			if json.Unmarshal(v, &rec) == nil {
				sizes[digest.Digest(k)] = rec.Size
				u.LayersSize += rec.Size
			}
			return nil
		})
		users := map[digest.Digest]int{}
		chains := map[digest.Digest][]digest.Digest{}
		tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var rec imageRecord
			if json.Unmarshal(v, &rec) == nil {
				chains[digest.Digest(k)] = rec.Chain
				for _, c := range rec.Chain {
					users[c]++
				}
			}
			return nil
		})
		for id, chain := range chains {
			var shared int64
			for _, c := range chain {
				if users[c] > 1 {
					shared += sizes[c]
				}
			}
			u.Shared[id] = shared
		}
		return nil
	})
	return u, err
}
