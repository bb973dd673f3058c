// Package storage is the registry's filesystem store: content-addressed
// blobs shared by every repository, per-repository links, tags and
// referrers, and resumable upload sessions.
//
// Every file that becomes visible is written to a temporary file on the same
// filesystem, verified, fsynced and renamed into place, so a crash at any
// moment leaves either the old state or the new one. Leftovers from a crash
// (temporary files, blobs nothing links to) are removed by Open and by GC.
//
// Layout under the root:
//
//	blobs/<alg>/<hex[:2]>/<hex>                          blob content
//	repositories/<name>/_layers/<alg>/<hex>              blob is in the repository
//	repositories/<name>/_manifests/revisions/<alg>/<hex> manifest is in the repository (holds its media type)
//	repositories/<name>/_manifests/tags/<tag>            tag (holds a digest)
//	repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex> referrer descriptor, by subject
//	uploads/<id>/{data,info}                             upload session
//	tmp/                                                 temporary files
package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
)

// Store is a registry store rooted at a directory.
type Store struct {
	root      string
	log       *slog.Logger
	uploadTTL time.Duration

	mu      sync.Mutex
	uploads map[string]*uploadState // running hash state of live sessions
}

// uploadState keeps the sha256 of the bytes received so far, so that
// committing a session does not read the data again. After a restart the
// state is gone and commit re-hashes the file.
type uploadState struct {
	mu   sync.Mutex
	hash hash.Hash
	size int64
}

// Options configures a Store.
type Options struct {
	// UploadTTL is how long an upload session may stay idle before it is
	// removed (default 24h).
	UploadTTL time.Duration
	// CleanTemp removes temporary files left by a previous process. Only
	// the server sets it: a `gc` run beside a live server must not touch
	// the server's files in flight.
	CleanTemp bool
}

// Open opens (creating if needed) the store at root.
func Open(root string, log *slog.Logger, opts Options) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.UploadTTL <= 0 {
		opts.UploadTTL = 24 * time.Hour
	}
	for _, d := range []string{"blobs", "repositories", "uploads", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("open registry store: %w", err)
		}
	}
	s := &Store{root: root, log: log, uploadTTL: opts.UploadTTL, uploads: map[string]*uploadState{}}
	// Temporary files older than any live request belong to requests that
	// died with a previous process.
	if ents, err := os.ReadDir(s.path("tmp")); err == nil && opts.CleanTemp {
		for _, e := range ents {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
				_ = os.RemoveAll(s.path("tmp", e.Name()))
			}
		}
	}
	return s, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

func (s *Store) blobPath(d digest.Digest) string {
	enc := d.Encoded()
	return s.path("blobs", string(d.Algorithm()), enc[:2], enc)
}

func (s *Store) repoPath(repo string, elem ...string) string {
	return s.path(append([]string{"repositories", repo}, elem...)...)
}

func (s *Store) layerLink(repo string, d digest.Digest) string {
	return s.repoPath(repo, "_layers", string(d.Algorithm()), d.Encoded())
}

func (s *Store) revisionLink(repo string, d digest.Digest) string {
	return s.repoPath(repo, "_manifests", "revisions", string(d.Algorithm()), d.Encoded())
}

func (s *Store) tagPath(repo, tag string) string {
	return s.repoPath(repo, "_manifests", "tags", tag)
}

// --- atomic file helpers

// writeFileAtomic writes data to path through a synced temporary file.
func (s *Store) writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(s.path("tmp"), "w-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.renameInto(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// renameInto moves a synced file to path, creating parents, and syncs the
// destination directory so that the rename survives a crash.
func (s *Store) renameInto(tmp, path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) { // some filesystems cannot sync directories
		err = nil
	}
	return err
}

// writeLink records a small marker file, skipping the write if present.
func (s *Store) writeLink(path string, data []byte) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	return s.writeFileAtomic(path, data)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// --- blobs

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Digest digest.Digest
	Size   int64
}

// linked reports whether repo holds d, as a blob or as a manifest (whose
// bytes clients may also fetch through the blob endpoint).
func (s *Store) linked(repo string, d digest.Digest) bool {
	return exists(s.layerLink(repo, d)) || exists(s.revisionLink(repo, d))
}

// StatBlob reports a blob linked into repo.
func (s *Store) StatBlob(ctx context.Context, repo string, d digest.Digest) (BlobInfo, error) {
	if !s.linked(repo, d) {
		return BlobInfo{}, fmt.Errorf("%w: %s", ErrBlobUnknown, d)
	}
	fi, err := os.Stat(s.blobPath(d))
	if err != nil {
		return BlobInfo{}, fmt.Errorf("%w: %s", ErrBlobUnknown, d)
	}
	return BlobInfo{Digest: d, Size: fi.Size()}, nil
}

// OpenBlob opens a blob linked into repo for reading.
func (s *Store) OpenBlob(ctx context.Context, repo string, d digest.Digest) (*os.File, BlobInfo, error) {
	if !s.linked(repo, d) {
		return nil, BlobInfo{}, fmt.Errorf("%w: %s", ErrBlobUnknown, d)
	}
	f, err := os.Open(s.blobPath(d))
	if err != nil {
		return nil, BlobInfo{}, fmt.Errorf("%w: %s", ErrBlobUnknown, d)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, BlobInfo{}, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return f, BlobInfo{Digest: d, Size: fi.Size()}, nil
}

// DeleteBlob unlinks a blob from repo; GC reclaims the content.
func (s *Store) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	if err := os.Remove(s.layerLink(repo, d)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrBlobUnknown, d)
		}
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// MountBlob links an existing blob into repo. With from empty, any blob
// the store holds may be mounted; otherwise it must be linked in from.
// It reports whether the blob was found.
func (s *Store) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (bool, error) {
	if from != "" && !exists(s.layerLink(from, d)) {
		return false, nil
	}
	unlock, err := s.sharedLock()
	if err != nil {
		return false, err
	}
	defer unlock()
	if !exists(s.blobPath(d)) {
		return false, nil
	}
	if err := s.writeLink(s.layerLink(repo, d), nil); err != nil {
		return false, fmt.Errorf("mount blob %s: %w", d, err)
	}
	return true, nil
}

// PutBlob stores a whole blob read from r and links it into repo. The
// content must hash to d (and be size bytes long when size >= 0).
func (s *Store) PutBlob(ctx context.Context, repo string, d digest.Digest, size int64, r io.Reader) (int64, error) {
	f, err := os.CreateTemp(s.path("tmp"), "blob-")
	if err != nil {
		return 0, fmt.Errorf("put blob: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	h, err := newHash(d.Algorithm())
	if err != nil {
		f.Close()
		return 0, err
	}
	n, err := copyBuffered(io.MultiWriter(newWritebackFile(f, 0), h), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("put blob %s: %w", d, err)
	}
	if size >= 0 && n != size {
		return n, fmt.Errorf("%w: received %d bytes, expected %d", ErrSizeInvalid, n, size)
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return n, fmt.Errorf("%w: content hashes to %s, not %s", ErrDigestInvalid, got, d)
	}
	return n, s.commitBlob(repo, d, tmp)
}

// commitBlob moves verified, synced content at tmp into the blob store
// (unless identical content is there already) and links it into repo.
func (s *Store) commitBlob(repo string, d digest.Digest, tmp string) error {
	unlock, err := s.sharedLock()
	if err != nil {
		return err
	}
	defer unlock()
	dst := s.blobPath(d)
	if exists(dst) {
		_ = os.Remove(tmp)
		// Refresh the mtime so a concurrent GC's grace period covers it.
		now := time.Now()
		_ = os.Chtimes(dst, now, now)
	} else if err := s.renameInto(tmp, dst); err != nil {
		return fmt.Errorf("commit blob %s: %w", d, err)
	}
	if err := s.writeLink(s.layerLink(repo, d), nil); err != nil {
		return fmt.Errorf("link blob %s: %w", d, err)
	}
	return nil
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

func copyBuffered(w io.Writer, r io.Reader) (int64, error) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	return io.CopyBuffer(w, r, *bp)
}

// --- uploads

type uploadInfo struct {
	Repo    string    `json:"repo"`
	Started time.Time `json:"started"`
}

// validUploadID guards the filesystem: ids are 32 lowercase hex digits.
func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// StartUpload opens an upload session for repo.
func (s *Store) StartUpload(ctx context.Context, repo string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	dir := s.path("uploads", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("start upload: %w", err)
	}
	info, _ := json.Marshal(uploadInfo{Repo: repo, Started: time.Now().UTC()})
	if err := os.WriteFile(filepath.Join(dir, "data"), nil, 0o644); err != nil {
		return "", fmt.Errorf("start upload: %w", err)
	}
	if err := s.writeFileAtomic(filepath.Join(dir, "info"), info); err != nil {
		return "", fmt.Errorf("start upload: %w", err)
	}
	s.mu.Lock()
	s.uploads[id] = &uploadState{hash: newSHA256()}
	s.mu.Unlock()
	return id, nil
}

// session finds an upload of repo and locks it; the caller must unlock.
func (s *Store) session(repo, id string) (*uploadState, string, error) {
	if !validUploadID(id) {
		return nil, "", fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	dir := s.path("uploads", id)
	raw, err := os.ReadFile(filepath.Join(dir, "info"))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s", ErrUploadUnknown, id)
	}
	var info uploadInfo
	if err := json.Unmarshal(raw, &info); err != nil || info.Repo != repo {
		return nil, "", fmt.Errorf("%w: %s", ErrUploadUnknown, id)
	}
	s.mu.Lock()
	st := s.uploads[id]
	if st == nil {
		st = &uploadState{size: -1} // restarted: hash state unknown
		s.uploads[id] = st
	}
	s.mu.Unlock()
	st.mu.Lock()
	// The session may have been finished while we waited for its lock.
	if !exists(filepath.Join(dir, "info")) {
		st.mu.Unlock()
		return nil, "", fmt.Errorf("%w: %s", ErrUploadUnknown, id)
	}
	return st, dir, nil
}

// UploadStatus reports how many bytes an upload session holds.
func (s *Store) UploadStatus(ctx context.Context, repo, id string) (int64, error) {
	st, dir, err := s.session(repo, id)
	if err != nil {
		return 0, err
	}
	defer st.mu.Unlock()
	fi, err := os.Stat(filepath.Join(dir, "data"))
	if err != nil {
		return 0, fmt.Errorf("%w: %s", ErrUploadUnknown, id)
	}
	return fi.Size(), nil
}

// AppendUpload appends r to the session. With start >= 0 the chunk must
// begin exactly at the current size (else ErrRangeInvalid), and with
// length >= 0 it must be exactly that long. It returns the new size.
func (s *Store) AppendUpload(ctx context.Context, repo, id string, start, length int64, r io.Reader) (int64, error) {
	st, dir, err := s.session(repo, id)
	if err != nil {
		return 0, err
	}
	defer st.mu.Unlock()
	return s.appendLocked(st, dir, start, length, r)
}

func (s *Store) appendLocked(st *uploadState, dir string, start, length int64, r io.Reader) (int64, error) {
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_WRONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUploadUnknown, err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if start >= 0 && start != size {
		return size, fmt.Errorf("%w: chunk starts at %d, upload holds %d bytes", ErrRangeInvalid, start, size)
	}
	if st.size != size {
		st.hash, st.size = nil, -1 // out of step (restart): rehash at commit
	}
	var w io.Writer = newWritebackFile(f, size)
	if st.hash != nil {
		w = io.MultiWriter(w, st.hash)
	}
	src := r
	if length >= 0 {
		src = io.LimitReader(r, length)
	}
	n, err := copyBuffered(w, src)
	if err != nil || (length >= 0 && n != length) {
		// Roll back a partial chunk so the client can retry from size.
		_ = f.Truncate(size)
		st.hash, st.size = nil, -1
		if err == nil {
			err = fmt.Errorf("%w: chunk of %d bytes, Content-Range said %d", ErrSizeInvalid, n, length)
		}
		return size, fmt.Errorf("upload chunk: %w", err)
	}
	if st.hash != nil {
		st.size = size + n
	}
	return size + n, nil
}

// CommitUpload appends r (possibly empty) to the session, verifies the
// whole content against d and moves it into the blob store. On a digest
// mismatch the session and its data are removed.
func (s *Store) CommitUpload(ctx context.Context, repo, id string, d digest.Digest, r io.Reader) (int64, error) {
	st, dir, err := s.session(repo, id)
	if err != nil {
		return 0, err
	}
	defer st.mu.Unlock()
	size, err := s.appendLocked(st, dir, -1, -1, r)
	if err != nil {
		return 0, err
	}
	data := filepath.Join(dir, "data")
	var got digest.Digest
	if st.hash != nil && st.size == size && d.Algorithm() == digest.SHA256 {
		got = digest.NewDigest(digest.SHA256, st.hash)
	} else {
		h, err := newHash(d.Algorithm())
		if err != nil {
			return 0, err
		}
		f, err := os.Open(data)
		if err != nil {
			return 0, fmt.Errorf("commit upload: %w", err)
		}
		_, err = copyBuffered(h, f)
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("commit upload: %w", err)
		}
		got = digest.NewDigest(d.Algorithm(), h)
	}
	if got != d {
		s.removeUpload(id)
		return 0, fmt.Errorf("%w: content hashes to %s, not %s", ErrDigestInvalid, got, d)
	}
	if err := syncFile(data); err != nil {
		return 0, fmt.Errorf("commit upload: %w", err)
	}
	// Move the data out of the session first: once info is gone the session
	// no longer exists for anyone else.
	tmp := s.path("tmp", "up-"+id)
	if err := os.Rename(data, tmp); err != nil {
		return 0, fmt.Errorf("commit upload: %w", err)
	}
	s.removeUpload(id)
	if err := s.commitBlob(repo, d, tmp); err != nil {
		_ = os.Remove(tmp)
		return 0, err
	}
	return size, nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// CancelUpload removes an upload session.
func (s *Store) CancelUpload(ctx context.Context, repo, id string) error {
	st, _, err := s.session(repo, id)
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	s.removeUpload(id)
	return nil
}

func (s *Store) removeUpload(id string) {
	dir := s.path("uploads", id)
	_ = os.Remove(filepath.Join(dir, "info")) // the session ends here
	_ = os.RemoveAll(dir)
	s.mu.Lock()
	delete(s.uploads, id)
	s.mu.Unlock()
}

// PurgeUploads removes sessions idle for longer than the upload TTL. It
// returns how many it removed.
func (s *Store) PurgeUploads(ctx context.Context) int {
	ents, err := os.ReadDir(s.path("uploads"))
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		dir := s.path("uploads", e.Name())
		fi, err := os.Stat(filepath.Join(dir, "data"))
		if err != nil {
			fi, err = os.Stat(dir)
		}
		if err == nil && time.Since(fi.ModTime()) > s.uploadTTL {
			s.removeUpload(e.Name())
			n++
		}
	}
	return n
}

// --- repositories

// Repositories lists repository names in lexical order.
func (s *Store) Repositories(ctx context.Context) ([]string, error) {
	base := s.path("repositories")
	var repos []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, "_") {
			if name == "_manifests" {
				rel, _ := filepath.Rel(base, filepath.Dir(p))
				repos = append(repos, filepath.ToSlash(rel))
			}
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	sort.Strings(repos)
	return repos, nil
}

// RepoExists reports whether repo holds anything.
func (s *Store) RepoExists(repo string) bool {
	return exists(s.repoPath(repo, "_manifests")) || exists(s.repoPath(repo, "_layers"))
}

func newSHA256() hash.Hash {
	h, _ := newHash(digest.SHA256)
	return h
}

// BlobRepositories lists the repositories that link blob d.
func (s *Store) BlobRepositories(ctx context.Context, d digest.Digest) ([]string, error) {
	if !exists(s.blobPath(d)) {
		return nil, nil
	}
	base := s.path("repositories")
	var out []string
	err := filepath.WalkDir(base, func(p string, de fs.DirEntry, err error) error {
		if err != nil || !de.IsDir() {
			return nil
		}
		if de.Name() == "_layers" {
			repo, _ := filepath.Rel(base, filepath.Dir(p))
			if exists(filepath.Join(p, string(d.Algorithm()), d.Encoded())) {
				out = append(out, filepath.ToSlash(repo))
			}
			return filepath.SkipDir
		}
		if strings.HasPrefix(de.Name(), "_") {
			return filepath.SkipDir
		}
		return ctx.Err()
	})
	sort.Strings(out)
	return out, err
}
