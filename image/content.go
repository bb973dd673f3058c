package image

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// contentStore keeps blobs by digest under dir/blobs/sha256/<hex>. Writes go
// to dir/ingest first and are renamed into place once verified and synced.
type contentStore struct {
	dir string
}

func (c *contentStore) blobPath(d digest.Digest) string {
	return filepath.Join(c.dir, "blobs", d.Algorithm().String(), d.Encoded())
}

func (c *contentStore) ingestDir() string { return filepath.Join(c.dir, "ingest") }

func (c *contentStore) init() error {
	for _, d := range []string{filepath.Join(c.dir, "blobs", "sha256"), c.ingestDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	return nil
}

func (c *contentStore) exists(d digest.Digest) bool {
	_, err := os.Stat(c.blobPath(d))
	return err == nil
}

func (c *contentStore) open(d digest.Digest) (*os.File, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", d, err)
	}
	f, err := os.Open(c.blobPath(d))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return f, nil
}

func (c *contentStore) read(d digest.Digest) ([]byte, error) {
	f, err := c.open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// put stores b and returns its digest.
func (c *contentStore) put(b []byte) (digest.Digest, error) {
	w, err := c.writer()
	if err != nil {
		return "", err
	}
	if _, err := w.Write(b); err != nil {
		w.discard()
		return "", err
	}
	if err := w.finish(""); err != nil {
		w.discard()
		return "", err
	}
	return w.digest, w.install()
}

// ingest is a blob being written: hashed as it goes, synced by finish and
// moved into the store by install.
type ingest struct {
	c      *contentStore
	f      *os.File
	h      hash.Hash
	n      int64
	digest digest.Digest
	// lazy skips the fsync: a layer blob is made durable by the store's
	// deferred sync (see durability.go) instead.
	lazy bool
}

func (c *contentStore) writer() (*ingest, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	f, err := os.OpenFile(filepath.Join(c.ingestDir(), hex.EncodeToString(rnd[:])), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("content: %w", err)
	}
	return &ingest{c: c, f: f, h: digest.SHA256.Hash()}, nil
}

func (w *ingest) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// finish syncs the data and checks it against want ("" accepts any digest).
func (w *ingest) finish(want digest.Digest) error {
	w.digest = digest.NewDigest(digest.SHA256, w.h)
	if want != "" && want != w.digest {
		return fmt.Errorf("content: digest mismatch: got %s, want %s", w.digest, want)
	}
	if w.lazy {
		return w.f.Close()
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("content: %w", err)
	}
	return w.f.Close()
}

// install renames the finished blob into place; an existing copy wins.
func (w *ingest) install() error {
	dst := w.c.blobPath(w.digest)
	if _, err := os.Stat(dst); err == nil {
		os.Remove(w.f.Name())
		return nil
	}
	if err := os.Rename(w.f.Name(), dst); err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("content: %w", err)
	}
	return syncDir(filepath.Dir(dst))
}

func (w *ingest) discard() {
	w.f.Close()
	os.Remove(w.f.Name())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// clearIngest removes unfinished writes; only safe when none is running.
func (c *contentStore) clearIngest() {
	entries, _ := os.ReadDir(c.ingestDir())
	for _, e := range entries {
		os.RemoveAll(filepath.Join(c.ingestDir(), e.Name()))
	}
}

// gc removes every blob not in keep.
func (c *contentStore) gc(keep map[digest.Digest]bool) (removed int, err error) {
	var entries []os.DirEntry
	dir := filepath.Join(c.dir, "blobs", "sha256")
	entries, err = os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if !keep[digest.NewDigestFromEncoded(digest.SHA256, e.Name())] {
			if os.Remove(filepath.Join(dir, e.Name())) == nil {
				removed++
			}
		}
	}
	return removed, nil
}
