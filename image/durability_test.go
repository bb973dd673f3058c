package image

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// An image whose unsynced marker survives a crash is dropped with its
// snapshots at the next Open; once synced it stays.
func TestUnsyncedImageDroppedAfterCrash(t *testing.T) {
	ctx := context.Background()
	for _, crashed := range []bool{false, true} {
		s, root := newStore(t)
		img, err := s.Import(ctx, bytes.NewReader(mkTar(t, tentry{name: "f", body: "x"})), ImportOptions{Ref: "dur:1"})
		if err != nil {
			t.Fatal(err)
		}
		s.durWG.Wait()
		if crashed {
			// As if the process died before the background sync ran.
			if err := s.db.Update(func(tx *bolt.Tx) error {
				return markUnsynced(tx, img.ID, []digest.Digest{chainIDs(img.Config.RootFS.DiffIDs)[0]})
			}); err != nil {
				t.Fatal(err)
			}
			s.db.Close()
		} else {
			s.Close()
		}
		s2, err := Open(ctx, root, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s2.Get(ctx, "dur:1")
		if crashed != (err != nil) {
			t.Fatalf("crashed=%v: Get err = %v", crashed, err)
		}
		if crashed {
			entries, _ := os.ReadDir(filepath.Join(root, "overlay"))
			blobs, _ := os.ReadDir(filepath.Join(root, "content", "blobs", "sha256"))
			if len(entries) != 0 || len(blobs) != 0 {
				t.Fatalf("left %d snapshots and %d blobs", len(entries), len(blobs))
			}
		}
		s2.Close()
	}
}
