package image

import (
	"context"
	"encoding/json"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Deferred durability. Unpacked layers are not synced before the image is
// recorded: a pull would wait for hundreds of megabytes to reach the disk.
// Instead the record carries an "unsynced" marker (in the same transaction)
// and a background syncfs(2) clears the markers it covers. At Open, a
// marker from the current boot only means the daemon died (the page cache
// still holds the files): they are synced and kept. A marker from an
// earlier boot means the machine went down with the files maybe unwritten:
// the image is deleted with the snapshots it introduced, so a crash leaves
// either a durable image or none, as before.

type unsyncedRecord struct {
	// Snapshots are the chain IDs this image created.
	Snapshots []digest.Digest `json:"snapshots"`
	// Boot is the kernel's boot ID when the image was recorded.
	Boot string `json:"boot"`
}

// bootID identifies the running kernel boot ("" if unknown: then every
// marker counts as from another boot).
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// markUnsynced records, inside tx, that image id's files may not be on disk yet.
func markUnsynced(tx *bolt.Tx, id digest.Digest, snaps []digest.Digest) error {
	return putJSON(tx.Bucket(bucketUnsynced), id.String(), unsyncedRecord{Snapshots: snaps, Boot: bootID()})
}

// scheduleSync starts (or re-arms) the background sync.
func (s *Store) scheduleSync() {
	s.durMu.Lock()
	defer s.durMu.Unlock()
	if s.durRunning {
		s.durAgain = true
		return
	}
	s.durRunning = true
	s.durWG.Add(1)
	go func() {
		defer s.durWG.Done()
		for {
			s.syncMarked()
			s.durMu.Lock()
			if !s.durAgain {
				s.durRunning = false
				s.durMu.Unlock()
				return
			}
			s.durAgain = false
			s.durMu.Unlock()
		}
	}()
}

// syncMarked syncs the filesystem and clears the markers that existed
// before the sync began.
func (s *Store) syncMarked() {
	var keys [][]byte
	s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUnsynced).ForEach(func(k, _ []byte) error {
			keys = append(keys, append([]byte(nil), k...))
			return nil
		})
	})
	if len(keys) == 0 {
		return
	}
	syncFS(s.root)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUnsynced)
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		s.log.Warn("clear unsynced markers", "err", err)
	}
}

// recoverUnsynced settles the markers a dead daemon left: same boot, sync
// and keep; earlier boot, drop the images with their references and the
// snapshots they introduced.
func (s *Store) recoverUnsynced(ctx context.Context) error {
	boot := bootID()
	sameBoot := false
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUnsynced).ForEach(func(_, v []byte) error {
			var rec unsyncedRecord
			if json.Unmarshal(v, &rec) == nil && boot != "" && rec.Boot == boot {
				sameBoot = true
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if sameBoot {
		syncFS(s.root) // before the markers go: the files are then on disk
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		marks := tx.Bucket(bucketUnsynced)
		var ids, kept []digest.Digest
		var snaps []digest.Digest
		marks.ForEach(func(k, v []byte) error {
			var rec unsyncedRecord
			if json.Unmarshal(v, &rec) == nil && boot != "" && rec.Boot == boot {
				kept = append(kept, digest.Digest(k))
				return nil
			}
			ids = append(ids, digest.Digest(k))
			snaps = append(snaps, rec.Snapshots...)
			return nil
		})
		for _, id := range kept {
			if err := marks.Delete([]byte(id)); err != nil {
				return err
			}
		}
		if len(ids) == 0 {
			return nil
		}
		drop := map[string]bool{}
		for _, id := range ids {
			drop[id.String()] = true
			if err := tx.Bucket(bucketImages).Delete([]byte(id)); err != nil {
				return err
			}
			if err := marks.Delete([]byte(id)); err != nil {
				return err
			}
			s.log.Warn("dropping an image whose files were not synced before the machine went down", "id", id)
		}
		refs := tx.Bucket(bucketRefs)
		var dead [][]byte
		refs.ForEach(func(k, v []byte) error {
			if drop[string(v)] {
				dead = append(dead, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range dead {
			if err := refs.Delete(k); err != nil {
				return err
			}
		}
		for _, c := range snaps {
			if err := tx.Bucket(bucketSnapshots).Delete([]byte(c)); err != nil {
				return err
			}
		}
		return nil
	})
}
