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
	"errors"
	"io"
	"log/slog"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
)

var errTODO = errors.New("image: not implemented yet")

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
type Store struct{}

// Open opens (creating if needed) the store under root and repairs what a
// crash may have left half-done.
func Open(ctx context.Context, root string, log *slog.Logger) (*Store, error) { return nil, errTODO }

// Close releases the database.
func (s *Store) Close() error { return nil }

// Import creates a single-layer image from an uncompressed or compressed
// (gzip, zstd, bzip2, xz where supported) rootfs tarball.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (*Image, error) {
	return nil, errTODO
}

// Get resolves a reference: "name[:tag]", "name@digest", a full image ID
// ("sha256:<hex>" or "<hex>") or an unambiguous ID prefix of at least 1 hex
// char. Missing: errdefs.NotFound with message "No such image: <ref>".
func (s *Store) Get(ctx context.Context, ref string) (*Image, error) { return nil, errTODO }

// List returns every image.
func (s *Store) List(ctx context.Context) ([]*Image, error) { return nil, errTODO }

// Tag points ref ("repo[:tag]", normalised as Docker does) at image id.
func (s *Store) Tag(ctx context.Context, id digest.Digest, ref string) error { return errTODO }

// Delete implements Docker's rmi: a reference untags (and deletes the image
// when it was its last reference); an ID deletes. inUse reports whether a
// container uses an image ID: such images are refused with errdefs.Conflict
// unless force (then only untagged). Without force, an ID with several
// repository references is refused with errdefs.Conflict ("image is
// referenced in multiple repositories").
func (s *Store) Delete(ctx context.Context, ref string, force, prune bool, inUse func(digest.Digest) bool) ([]DeleteResult, error) {
	return nil, errTODO
}

// History returns the history of image id, newest first.
func (s *Store) History(ctx context.Context, id digest.Digest) ([]HistoryEntry, error) {
	return nil, errTODO
}

// CreateRootfs makes the writable layer of container cid on top of img's
// layers and mounts the overlay; it returns the mounted path.
func (s *Store) CreateRootfs(ctx context.Context, cid string, img *Image) (string, error) {
	return "", errTODO
}

// MountRootfs mounts container cid's rootfs if it is not mounted (after a
// reboot or an unmount) and returns its path.
func (s *Store) MountRootfs(ctx context.Context, cid string) (string, error) { return "", errTODO }

// UnmountRootfs unmounts container cid's rootfs; not mounted is not an error.
func (s *Store) UnmountRootfs(ctx context.Context, cid string) error { return errTODO }

// RemoveRootfs unmounts and deletes container cid's writable layer.
func (s *Store) RemoveRootfs(ctx context.Context, cid string) error { return errTODO }

// RootfsSize returns the size of container cid's writable layer and of the
// whole rootfs (writable layer plus image layers).
func (s *Store) RootfsSize(ctx context.Context, cid string) (rw, total int64, err error) {
	return 0, 0, errTODO
}
