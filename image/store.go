// Package image owns local images: the content store (blobs by digest),
// image metadata (configs, manifests, tags) in a bbolt database, layer
// unpacking into overlay snapshots, and the writable root filesystems of
// containers built on those snapshots.
//
// CONTRACT (agreed with the daemon): the exported names and signatures in this
// file are what daemon/ calls. Bodies may change; signatures only by agreement.
package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Image is one local image as the daemon sees it.
type Image struct {
	// ID is the digest of the image config (Docker's image ID).
	ID digest.Digest
	// ManifestDigest is the digest of the image manifest in the content store.
	ManifestDigest digest.Digest
	// Config is the image config: Created, Author, Platform, Config (Cmd,
	// Entrypoint, Env, ...), RootFS.DiffIDs, History.
	Config dockerspec.DockerOCIImage
	// RepoTags are the normalised references pointing at this image,
	// e.g. "docker.io/library/busybox:latest". Sorted.
	RepoTags []string
	// RepoDigests are "name@sha256:..." references, e.g. from pulls. Sorted.
	RepoDigests []string
	// Size is the unpacked size of all layers in bytes.
	Size int64
	// Created is the image creation time from the config.
	Created time.Time
}

// ImportOptions controls Import.
type ImportOptions struct {
	// Ref is an optional reference to tag the image with ("repo" or "repo:tag"; tag defaults to latest).
	Ref string
	// Changes are Dockerfile instructions applied to the config:
	// CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR.
	Changes []string
	// Message becomes the comment of the history entry.
	Message string
	// Platform is "os/arch[/variant]"; empty means the host's.
	Platform string
}

// DeleteResult is one line of Docker's rmi answer: exactly one field is set.
type DeleteResult struct {
	Untagged string
	Deleted  string
}

// HistoryEntry is one entry of an image's history, newest first.
type HistoryEntry struct {
	ID        string // image ID for the top entry, "<missing>" otherwise
	Created   time.Time
	CreatedBy string
	Tags      []string
	Size      int64
	Comment   string
}

// Store is the local image store rooted at a directory.
//
// Layout: content/blobs/sha256/<hex> (blobs), metadata.db (bbolt: images,
// refs, snapshots, container rootfs records), overlay/<id>/diff (one
// unpacked snapshot per layer chain ID, shared), overlay/<cid>/{diff,work,
// merged} (a container's writable layer and mount point).
//
// Crash safety: files are written before the transaction that records
// them; Open removes whatever no transaction recorded. New images are
// recorded with an "unsynced" marker that a background syncfs clears; Open
// drops images still marked (durability.go).
type Store struct {
	root    string
	log     *slog.Logger
	db      *bolt.DB
	content *contentStore

	// mu serialises changes that add or drop snapshots and blobs (image
	// commits, deletes, rootfs creation), so a delete never collects what a
	// concurrent commit is about to reference.
	mu sync.Mutex

	cacheMu sync.RWMutex
	configs map[digest.Digest]*dockerspec.DockerOCIImage // immutable by digest

	// deferred sync of new images (durability.go)
	durMu      sync.Mutex
	durRunning bool
	durAgain   bool
	durWG      sync.WaitGroup
}

// Open opens (creating if needed) the store under root and repairs what a
// crash may have left half-done.
func Open(ctx context.Context, root string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		root:    root,
		log:     log,
		content: &contentStore{dir: filepath.Join(root, "content")},
		configs: map[digest.Digest]*dockerspec.DockerOCIImage{},
	}
	if err := s.content.init(); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	if err := os.MkdirAll(s.overlayDir(), 0o700); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("image store: %s is locked: is another daemon using this data root?", filepath.Join(root, "metadata.db"))
		}
		return nil, fmt.Errorf("image store: open %s: %w", filepath.Join(root, "metadata.db"), err)
	}
	s.db = db
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("image store: %w", err)
	}
	if err := s.recover(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("image store: recover: %w", err)
	}
	return s, nil
}

// Close waits for the pending sync of new images and releases the database.
func (s *Store) Close() error {
	s.durWG.Wait()
	return s.db.Close()
}

// Import creates a single-layer image from an uncompressed or compressed
// (gzip, zstd, bzip2, xz where supported) rootfs tarball.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (*Image, error) {
	var cfg dockerspec.DockerOCIImageConfig
	if err := applyChanges(&cfg, opts.Changes); err != nil {
		return nil, err
	}
	comment := opts.Message
	if comment == "" {
		comment = "Imported from -"
	}
	img, err := s.Commit(ctx, CommitOptions{
		Layer:    r,
		Config:   &cfg,
		Comment:  comment,
		Ref:      opts.Ref,
		Platform: opts.Platform,
	})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return img, nil
}

// Get resolves a reference: "name[:tag]", "name@digest", a full image ID
// ("sha256:<hex>" or "<hex>") or an unambiguous ID prefix of at least 1 hex
// char. Missing: errdefs.NotFound with message "No such image: <ref>".
func (s *Store) Get(ctx context.Context, ref string) (*Image, error) {
	var img *Image
	err := s.db.View(func(tx *bolt.Tx) error {
		id, _, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		img, err = s.load(tx, id)
		return err
	})
	return img, err
}

// List returns every image.
func (s *Store) List(ctx context.Context) ([]*Image, error) {
	var out []*Image
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImages).ForEach(func(k, _ []byte) error {
			img, err := s.load(tx, digest.Digest(k))
			if err != nil {
				s.log.Warn("skip unreadable image", "id", string(k), "err", err)
				return nil
			}
			out = append(out, img)
			return nil
		})
	})
	return out, err
}

// Tag points ref ("repo[:tag]", normalised as Docker does) at image id.
func (s *Store) Tag(ctx context.Context, id digest.Digest, ref string) error {
	name, err := normalizeRef(ref)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketImages).Get([]byte(id)) == nil {
			return errdefs.NotFoundf("No such image: %s", id)
		}
		return tx.Bucket(bucketRefs).Put([]byte(name), []byte(id))
	})
}

// Delete implements Docker's rmi: a reference untags (and deletes the image
// when it was its last reference); an ID deletes. inUse reports whether a
// container uses an image ID: such images are refused with errdefs.Conflict
// unless force (then only untagged). Without force, an ID with several
// repository references is refused with errdefs.Conflict ("image is
// referenced in multiple repositories").
func (s *Store) Delete(ctx context.Context, ref string, force, prune bool, inUse func(digest.Digest) bool) ([]DeleteResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inUse == nil {
		inUse = func(digest.Digest) bool { return false }
	}
	var (
		id      digest.Digest
		matched string
		refs    []string
	)
	if err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if id, matched, err = resolve(tx, ref); err != nil {
			return err
		}
		refs = refsOf(tx, id)
		return nil
	}); err != nil {
		return nil, err
	}
	short := id.Encoded()[:12]
	used := inUse(id)
	var untag []string
	if matched != "" {
		rest := without(refs, matched)
		if used && !force && len(rest) == 0 {
			return nil, errdefs.Conflictf("conflict: unable to remove repository reference %q (must force) - container is using its referenced image %s", ref, short)
		}
		untag = []string{matched}
		// Digest references alone do not keep an image: Docker drops them
		// with the last tag.
		if !hasTag(rest) && !used {
			untag = append(untag, rest...)
		}
	} else {
		if used {
			if !force {
				return nil, errdefs.Conflictf("conflict: unable to delete %s (must be forced) - image is being used by a container", short)
			}
		} else if !force && repositories(refs) > 1 {
			return nil, errdefs.Conflictf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", short)
		}
		untag = refs
	}
	var res []DeleteResult
	deleteImage := !used && len(untag) == len(refs)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRefs)
		for _, r := range untag {
			if err := b.Delete([]byte(r)); err != nil {
				return err
			}
			res = append(res, DeleteResult{Untagged: r})
		}
		if deleteImage {
			return tx.Bucket(bucketImages).Delete([]byte(id))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("delete image %s: %w", short, err)
	}
	if deleteImage {
		res = append(res, DeleteResult{Deleted: id.String()})
		s.cacheMu.Lock()
		delete(s.configs, id)
		s.cacheMu.Unlock()
		if err := s.collect(ctx); err != nil {
			s.log.Warn("collect unused layers", "err", err)
		}
	}
	return res, nil
}

// History returns the history of image id, newest first.
func (s *Store) History(ctx context.Context, id digest.Digest) ([]HistoryEntry, error) {
	var out []HistoryEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		img, err := s.load(tx, id)
		if err != nil {
			return err
		}
		rec, err := getImageRecord(tx, id)
		if err != nil {
			return err
		}
		layer := 0
		for _, h := range img.Config.History {
			e := HistoryEntry{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment}
			if h.Created != nil {
				e.Created = *h.Created
			}
			if !h.EmptyLayer {
				if layer < len(rec.Chain) {
					if snap, err := getSnapshot(tx, rec.Chain[layer]); err == nil {
						e.Size = snap.Size
					}
				}
				layer++
			}
			out = append(out, e)
		}
		if len(out) == 0 {
			out = append(out, HistoryEntry{Created: img.Created, Size: img.Size})
		}
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
		out[0].ID = id.String()
		out[0].Tags = img.RepoTags
		return nil
	})
	return out, err
}

// load builds the Image for id inside tx.
func (s *Store) load(tx *bolt.Tx, id digest.Digest) (*Image, error) {
	rec, err := getImageRecord(tx, id)
	if err != nil {
		return nil, err
	}
	cfg, err := s.config(id)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	img := &Image{ID: id, ManifestDigest: rec.Manifest, Config: *cfg}
	for _, r := range refsOf(tx, id) {
		if strings.Contains(r, "@") {
			img.RepoDigests = append(img.RepoDigests, r)
		} else {
			img.RepoTags = append(img.RepoTags, r)
		}
	}
	for _, c := range rec.Chain {
		if snap, err := getSnapshot(tx, c); err == nil {
			img.Size += snap.Size
		}
	}
	if cfg.Created != nil {
		img.Created = *cfg.Created
	}
	return img, nil
}

// config returns the parsed config blob id, cached: blobs never change.
func (s *Store) config(id digest.Digest) (*dockerspec.DockerOCIImage, error) {
	s.cacheMu.RLock()
	cfg := s.configs[id]
	s.cacheMu.RUnlock()
	if cfg != nil {
		return cfg, nil
	}
	raw, err := s.content.read(id)
	if err != nil {
		return nil, err
	}
	cfg = new(dockerspec.DockerOCIImage)
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", id, err)
	}
	s.cacheMu.Lock()
	s.configs[id] = cfg
	s.cacheMu.Unlock()
	return cfg, nil
}

func without(list []string, x string) []string {
	var out []string
	for _, v := range list {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

func hasTag(refs []string) bool {
	for _, r := range refs {
		if !strings.Contains(r, "@") {
			return true
		}
	}
	return false
}

// repositories counts the distinct repository names among refs.
func repositories(refs []string) int {
	names := map[string]bool{}
	for _, r := range refs {
		name, _, _ := strings.Cut(r, "@")
		if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
			name = name[:i]
		}
		names[name] = true
	}
	return len(names)
}

func sortedCopy(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}
