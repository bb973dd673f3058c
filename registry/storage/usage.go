package storage

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
)

// Usage summarises what the store holds.
type Usage struct {
	Blobs   int64
	Bytes   int64
	Uploads int64
}

// Usage walks the blob store and counts upload sessions.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	var u Usage
	err := filepath.WalkDir(s.path("blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				u.Blobs++
				u.Bytes += info.Size()
			}
		}
		return ctx.Err()
	})
	if ents, rerr := os.ReadDir(s.path("uploads")); rerr == nil {
		u.Uploads = int64(len(ents))
	}
	return u, err
}
