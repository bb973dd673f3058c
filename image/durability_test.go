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

// An image whose unsynced marker survives a machine crash (a marker from
// another boot) is dropped with its snapshots at the next Open; once
// synced, or when only the daemon died (same boot), it stays.
func TestUnsyncedImageDroppedAfterCrash(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ crashed, sameBoot bool }{{false, false}, {true, true}, {true, false}} {
		crashed := tc.crashed
		s, root := newStore(t)
		img, err := s.Import(ctx, bytes.NewReader(mkTar(t, tentry{name: "f", body: "x"})), ImportOptions{Ref: "dur:1"})
		if err != nil {
			t.Fatal(err)
		}
		s.durWG.Wait()
		if crashed {
			// As if the process died before the background sync ran.
			boot := "an earlier boot"
			if tc.sameBoot {
				boot = bootID()
			}
			if err := s.db.Update(func(tx *bolt.Tx) error {
				return putJSON(tx.Bucket(bucketUnsynced), img.ID.String(), unsyncedRecord{Snapshots: []digest.Digest{chainIDs(img.Config.RootFS.DiffIDs)[0]}, Boot: boot})
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
		dropped := crashed && !tc.sameBoot
		_, err = s2.Get(ctx, "dur:1")
		if dropped != (err != nil) {
			t.Fatalf("%+v: Get err = %v", tc, err)
		}
		if dropped {
			entries, _ := os.ReadDir(filepath.Join(root, "overlay"))
			blobs, _ := os.ReadDir(filepath.Join(root, "content", "blobs", "sha256"))
			if len(entries) != 0 || len(blobs) != 0 {
				t.Fatalf("left %d snapshots and %d blobs", len(entries), len(blobs))
			}
		}
		s2.Close()
	}
}
