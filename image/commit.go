package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// CommitOptions describes a new image made of a parent image plus at most
// one new layer: what import, docker commit and each build step produce.
type CommitOptions struct {
	// Parent is the image ID to build on; "" starts from scratch.
	Parent digest.Digest
	// Layer is the new layer as a tar stream (uncompressed, gzip, zstd or
	// bzip2); it is stored uncompressed. Nil adds an empty-layer history entry.
	Layer io.Reader
	// Config is the runtime config of the new image; nil keeps the parent's.
	Config *dockerspec.DockerOCIImageConfig
	// CreatedBy, Comment and Author describe the step in the history.
	CreatedBy, Comment, Author string
	// Ref optionally tags the result ("repo[:tag]").
	Ref string
	// Platform is "os/arch[/variant]" for a scratch image; "" is the host's.
	Platform string
}

// Commit stores a new image as described by opts.
func (s *Store) Commit(ctx context.Context, opts CommitOptions) (*Image, error) {
	now := time.Now().UTC()
	var img dockerspec.DockerOCIImage
	var parentLayers []ocispec.Descriptor
	if opts.Parent != "" {
		parent, err := s.View(ctx, opts.Parent.String())
		if err != nil {
			return nil, err
		}
		cfg, err := parent.ConfigFile()
		if err != nil {
			return nil, err
		}
		img = *cfg
		img.History = append([]ocispec.History(nil), cfg.History...)
		img.RootFS.DiffIDs = append([]digest.Digest(nil), cfg.RootFS.DiffIDs...)
		m, err := parent.Manifest()
		if err != nil {
			return nil, err
		}
		parentLayers = m.Layers
	} else {
		p, err := parsePlatform(opts.Platform)
		if err != nil {
			return nil, err
		}
		img.Platform = p
		img.RootFS.Type = "layers"
	}
	img.Created = &now
	if opts.Author != "" {
		img.Author = opts.Author
	}
	if opts.Config != nil {
		img.Config = *opts.Config
	}
	var layers []*ingested
	hist := ocispec.History{Created: &now, CreatedBy: opts.CreatedBy, Comment: opts.Comment, Author: opts.Author}
	if opts.Layer != nil {
		rc, _, err := archive.Decompress(opts.Layer)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		l, err := s.ingestLayer(ctx, rc, ocispec.MediaTypeImageLayer, "", "", 0)
		rc.Close()
		if err != nil {
			return nil, err
		}
		if l.entries == 0 {
			l.discard()
			return nil, errdefs.InvalidParameterf("empty or invalid layer archive")
		}
		layers = append(layers, l)
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, l.diffID)
	} else {
		hist.EmptyLayer = true
	}
	img.History = append(img.History, hist)
	all := make([]ocispec.Descriptor, 0, len(parentLayers)+len(layers))
	all = append(all, parentLayers...)
	for _, l := range layers {
		all = append(all, l.desc)
	}
	return s.store(ctx, &img, nil, nil, all, layers, opts.Ref, false)
}

// ingested is a layer blob written to the ingest area and unpacked into a
// temporary snapshot dir, not yet part of the store.
type ingested struct {
	desc    ocispec.Descriptor
	diffID  digest.Digest
	size    int64 // unpacked bytes
	entries int
	blob    *ingest // nil when the blob was already stored
	tmpDir  string  // "" when the snapshot already existed
}

func (l *ingested) discard() {
	if l.blob != nil {
		l.blob.discard()
	}
	if l.tmpDir != "" {
		os.RemoveAll(l.tmpDir)
	}
}

func (s *Store) overlayDir() string { return filepath.Join(s.root, "overlay") }

func (s *Store) snapshotDir(chain digest.Digest) string {
	return filepath.Join(s.overlayDir(), chain.Encoded())
}

func (s *Store) tempDir() (string, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	dir := filepath.Join(s.overlayDir(), "tmp-"+hex.EncodeToString(rnd[:]))
	if err := os.MkdirAll(filepath.Join(dir, "diff"), 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// ingestLayer reads one layer blob (as stored, in mediaType's compression),
// writes it to the ingest area and unpacks it in the same pass. want and
// wantDiffID, when set, are verified; limit, when > 0, bounds the tar's size.
func (s *Store) ingestLayer(ctx context.Context, blob io.Reader, mediaType string, want, wantDiffID digest.Digest, limit int64) (*ingested, error) {
	w, err := s.content.writer()
	if err != nil {
		return nil, err
	}
	w.lazy = true
	l := &ingested{blob: w}
	if l.tmpDir, err = s.tempDir(); err != nil {
		l.discard()
		return nil, fmt.Errorf("layer: %w", err)
	}
	fail := func(err error) (*ingested, error) {
		l.discard()
		return nil, err
	}
	// Three stages: the blob is read and written to the ingest file on one
	// goroutine, decompressed and hashed on another, unpacked on this one.
	fetch := newReadAhead(io.TeeReader(blob, w))
	var ahead *readAhead
	// stop ends the stages after a failure: closing the blob unblocks a
	// read waiting on the network, and nothing writes to w afterwards.
	stop := func() {
		if c, ok := blob.(io.Closer); ok {
			c.Close()
		}
		fetch.close()
		if ahead != nil {
			ahead.close()
		}
	}
	discard := fail
	fail = func(err error) (*ingested, error) {
		stop()
		return discard(err)
	}
	var tarStream io.Reader
	switch {
	case strings.HasSuffix(mediaType, "gzip"):
		zr, err := gzip.NewReader(fetch)
		if err != nil {
			return fail(errdefs.InvalidParameter(fmt.Errorf("layer: gzip: %w", err)))
		}
		defer zr.Close()
		tarStream = zr
	case strings.HasSuffix(mediaType, "zstd"):
		zr, err := zstd.NewReader(fetch, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return fail(errdefs.InvalidParameter(fmt.Errorf("layer: zstd: %w", err)))
		}
		defer zr.Close()
		tarStream = zr
	default:
		tarStream = fetch
	}
	if limit > 0 {
		tarStream = &boundedReader{r: tarStream, left: limit}
	}
	diffHash := digest.SHA256.Digester()
	untar := io.TeeReader(tarStream, diffHash.Hash())
	ahead = newReadAhead(io.MultiReader(untar, readerFunc(func([]byte) (int, error) {
		// Hash what follows the end-of-archive marker too, and read the
		// blob to its end: the digests cover the whole streams.
		if _, err := io.Copy(io.Discard, fetch); err != nil {
			return 0, err
		}
		return 0, io.EOF
	})))
	st, err := archive.ApplyTar(ctx, filepath.Join(l.tmpDir, "diff"), ahead, archive.ApplyOptions{Overlay: true, Parallel: applyParallel})
	if err != nil {
		if ctx.Err() != nil {
			return fail(err)
		}
		return fail(errdefs.InvalidParameter(fmt.Errorf("layer: %w", err)))
	}
	if _, err := io.Copy(io.Discard, ahead); err != nil {
		if ctx.Err() != nil {
			return fail(err)
		}
		return fail(errdefs.InvalidParameter(fmt.Errorf("layer: %w", err)))
	}
	// Both stages read to their end: they are done with w.
	ahead.close()
	fetch.close()
	if err := w.finish(want); err != nil {
		return fail(errdefs.InvalidParameter(err))
	}
	l.diffID = diffHash.Digest()
	if wantDiffID != "" && wantDiffID != l.diffID {
		return fail(errdefs.InvalidParameterf("layer %s: diff ID mismatch: got %s, want %s", w.digest, l.diffID, wantDiffID))
	}
	l.size, l.entries = st.Size, st.Entries
	l.desc = ocispec.Descriptor{MediaType: mediaType, Digest: w.digest, Size: w.n}
	return l, nil
}

// applyParallel is how many goroutines create a layer's small files.
const applyParallel = 4

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// errTooLarge cuts off a layer that expands beyond its limit.
var errTooLarge = errors.New("layer expands to more than its compressed size allows: refusing a decompression bomb")

type boundedReader struct {
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// chainIDs computes the OCI chain IDs of a stack of diff IDs.
func chainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

// store installs an image: the ingested layers (in order, matching the top
// of img.RootFS.DiffIDs), its config and manifest, and the records that make
// them visible. rawConfig and rawManifest are kept byte for byte when given
// (pulls), so digests stay those of the source.
func (s *Store) store(ctx context.Context, img *dockerspec.DockerOCIImage, rawConfig, rawManifest []byte, layerDescs []ocispec.Descriptor, layers []*ingested, ref string, recordDigest bool) (_ *Image, err error) {
	defer func() {
		if err != nil {
			for _, l := range layers {
				l.discard()
			}
		}
	}()
	if len(layerDescs) != len(img.RootFS.DiffIDs) {
		return nil, errdefs.InvalidParameterf("image has %d layers but %d diff IDs", len(layerDescs), len(img.RootFS.DiffIDs))
	}
	var name string
	if ref != "" {
		if name, err = normalizeRef(ref); err != nil {
			return nil, err
		}
	}
	if rawConfig == nil {
		if rawConfig, err = json.Marshal(img); err != nil {
			return nil, err
		}
	}
	configDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(rawConfig), Size: int64(len(rawConfig))}
	if rawManifest == nil {
		m := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    configDesc,
			Layers:    layerDescs,
		}
		if rawManifest, err = json.Marshal(m); err != nil {
			return nil, err
		}
	}
	id := configDesc.Digest
	manifestDigest := digest.FromBytes(rawManifest)
	chain := chainIDs(img.RootFS.DiffIDs)
	firstNew := len(chain) - len(layers)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Every layer below the new ones must be present (as blob and snapshot).
	var newSnaps []int
	err = s.db.View(func(tx *bolt.Tx) error {
		for i, c := range chain {
			_, serr := getSnapshot(tx, c)
			if i < firstNew {
				if serr != nil || !s.content.exists(layerDescs[i].Digest) {
					return errdefs.NotFoundf("layer %s of image %s is missing", layerDescs[i].Digest, id)
				}
				continue
			}
			if serr != nil {
				newSnaps = append(newSnaps, i)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, l := range layers {
		if l.blob != nil {
			if err := l.blob.install(); err != nil {
				return nil, err
			}
			l.blob = nil
		}
		c := chain[firstNew+i]
		if l.tmpDir != "" && contains(newSnaps, firstNew+i) {
			dst := s.snapshotDir(c)
			os.RemoveAll(dst) // an unrecorded leftover
			if err := os.Rename(l.tmpDir, dst); err != nil {
				return nil, fmt.Errorf("install layer %s: %w", l.diffID, err)
			}
			l.tmpDir = ""
		} else if l.tmpDir != "" {
			os.RemoveAll(l.tmpDir)
			l.tmpDir = ""
		}
	}
	if _, err := s.content.put(rawConfig); err != nil {
		return nil, err
	}
	if _, err := s.content.put(rawManifest); err != nil {
		return nil, err
	}
	rec := imageRecord{Manifest: manifestDigest, Chain: chain}
	for _, d := range layerDescs {
		rec.Layers = append(rec.Layers, d.Digest)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		snaps := tx.Bucket(bucketSnapshots)
		for i, l := range layers {
			if contains(newSnaps, firstNew+i) {
				if err := putJSON(snaps, chain[firstNew+i].String(), snapshotRecord{DiffID: l.diffID, Size: l.size}); err != nil {
					return err
				}
			}
		}
		isNew := tx.Bucket(bucketImages).Get([]byte(id)) == nil
		if err := putJSON(tx.Bucket(bucketImages), id.String(), rec); err != nil {
			return err
		}
		if isNew || len(layers) > 0 {
			var created []digest.Digest
			for _, i := range newSnaps {
				created = append(created, chain[i])
			}
			if err := markUnsynced(tx, id, created); err != nil {
				return err
			}
		}
		if name != "" {
			if err := tx.Bucket(bucketRefs).Put([]byte(name), []byte(id)); err != nil {
				return err
			}
			if recordDigest {
				repo, _, _ := strings.Cut(name, "@")
				if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
					repo = repo[:i]
				}
				if err := tx.Bucket(bucketRefs).Put([]byte(repo+"@"+manifestDigest.String()), []byte(id)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record image %s: %w", id, err)
	}
	s.scheduleSync()
	var out *Image
	err = s.db.View(func(tx *bolt.Tx) error {
		out, err = s.load(tx, id)
		return err
	})
	return out, err
}

func contains(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

func syncFS(dir string) {
	if fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0); err == nil {
		unix.Syncfs(fd)
		unix.Close(fd)
	}
}

func parsePlatform(p string) (ocispec.Platform, error) {
	if p == "" {
		return ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}, nil
	}
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, errdefs.InvalidParameterf("invalid platform %q: want os/arch[/variant]", p)
	}
	out := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		out.Variant = parts[2]
	}
	return out, nil
}

// recover removes what no transaction recorded: ingest files, temporary
// and unrecorded snapshot dirs, and unreferenced blobs.
func (s *Store) recover(ctx context.Context) error {
	if err := s.recoverUnsynced(ctx); err != nil {
		return err
	}
	known := map[string]bool{}
	keep := map[digest.Digest]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		tx.Bucket(bucketSnapshots).ForEach(func(k, _ []byte) error {
			known[digest.Digest(k).Encoded()] = true
			return nil
		})
		tx.Bucket(bucketRootfs).ForEach(func(k, _ []byte) error {
			known[string(k)] = true
			return nil
		})
		return tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var rec imageRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return nil
			}
			keep[digest.Digest(k)] = true
			keep[rec.Manifest] = true
			for _, l := range rec.Layers {
				keep[l] = true
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(s.overlayDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		if known[e.Name()] {
			continue
		}
		dir := filepath.Join(s.overlayDir(), e.Name())
		unix.Unmount(filepath.Join(dir, "merged"), unix.MNT_DETACH)
		if err := os.RemoveAll(dir); err != nil {
			s.log.Warn("remove stale snapshot dir", "dir", dir, "err", err)
		} else {
			s.log.Info("removed stale snapshot dir", "dir", dir)
		}
	}
	s.content.clearIngest()
	n, err := s.content.gc(keep)
	if n > 0 {
		s.log.Info("removed unreferenced blobs", "count", n)
	}
	return err
}

// collect drops snapshots and blobs that no image or container uses any
// more. Caller holds s.mu.
func (s *Store) collect(ctx context.Context) error {
	usedSnaps := map[digest.Digest]bool{}
	usedBlobs := map[digest.Digest]bool{}
	var dropSnaps []digest.Digest
	err := s.db.Update(func(tx *bolt.Tx) error {
		tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var rec imageRecord
			if json.Unmarshal(v, &rec) == nil {
				usedBlobs[digest.Digest(k)] = true
				usedBlobs[rec.Manifest] = true
				for _, l := range rec.Layers {
					usedBlobs[l] = true
				}
				for _, c := range rec.Chain {
					usedSnaps[c] = true
				}
			}
			return nil
		})
		tx.Bucket(bucketRootfs).ForEach(func(k, v []byte) error {
			var rec rootfsRecord
			if json.Unmarshal(v, &rec) == nil {
				for _, c := range rec.Chain {
					usedSnaps[c] = true
				}
			}
			return nil
		})
		snaps := tx.Bucket(bucketSnapshots)
		snaps.ForEach(func(k, _ []byte) error {
			if !usedSnaps[digest.Digest(k)] {
				dropSnaps = append(dropSnaps, digest.Digest(k))
			}
			return nil
		})
		for _, c := range dropSnaps {
			if err := snaps.Delete([]byte(c)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range dropSnaps {
		if err := os.RemoveAll(s.snapshotDir(c)); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := s.content.gc(usedBlobs); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
