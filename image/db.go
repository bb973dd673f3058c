package image

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

var (
	// bucketImages: image ID -> imageRecord.
	bucketImages = []byte("images")
	// bucketRefs: normalised reference ("docker.io/library/x:tag" or
	// "docker.io/library/x@sha256:...") -> image ID.
	bucketRefs = []byte("refs")
	// bucketSnapshots: layer chain ID -> snapshotRecord.
	bucketSnapshots = []byte("snapshots")
	// bucketRootfs: container ID -> rootfsRecord.
	bucketRootfs = []byte("rootfs")

	// bucketUnsynced: image ID -> unsyncedRecord, for images recorded
	// before their files were known to be on disk (see durability.go).
	bucketUnsynced = []byte("unsynced")

	// bucketCompressed: diff ID -> descriptor of its gzip form as last
	// pushed (layers stored uncompressed are compressed on push).
	bucketCompressed = []byte("compressed")

	allBuckets = [][]byte{bucketImages, bucketRefs, bucketSnapshots, bucketRootfs, bucketUnsynced, bucketCompressed}
)

type imageRecord struct {
	Manifest digest.Digest   `json:"manifest"`
	Chain    []digest.Digest `json:"chain"` // layer chain IDs, bottom first
	Layers   []digest.Digest `json:"layers"`
}

type snapshotRecord struct {
	DiffID digest.Digest `json:"diffID"`
	Size   int64         `json:"size"` // bytes of file content unpacked
}

type rootfsRecord struct {
	Image digest.Digest   `json:"image"`
	Chain []digest.Digest `json:"chain"` // lower snapshots, bottom first
}

func getJSON(b *bolt.Bucket, key string, v any) (bool, error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("metadata %s/%s: %w", "bucket", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

func getImageRecord(tx *bolt.Tx, id digest.Digest) (*imageRecord, error) {
	var rec imageRecord
	ok, err := getJSON(tx.Bucket(bucketImages), string(id), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errdefs.NotFoundf("No such image: %s", id)
	}
	return &rec, nil
}

func getSnapshot(tx *bolt.Tx, chain digest.Digest) (*snapshotRecord, error) {
	var rec snapshotRecord
	ok, err := getJSON(tx.Bucket(bucketSnapshots), string(chain), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errdefs.NotFoundf("no snapshot for layer chain %s", chain)
	}
	return &rec, nil
}

// refsOf returns the references pointing at id, sorted.
func refsOf(tx *bolt.Tx, id digest.Digest) []string {
	var out []string
	tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
		if string(v) == string(id) {
			out = append(out, string(k))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

var (
	fullID   = regexp.MustCompile(`^(sha256:)?([0-9a-f]{64})$`)
	shortID  = regexp.MustCompile(`^(sha256:)?([0-9a-f]{1,63})$`)
	errEmpty = errdefs.InvalidParameterf("empty image reference")
)

// normalizeRef turns "busybox", "busybox:1" or "x/y@sha256:..." into the
// full form stored in the refs bucket; a name alone gets ":latest".
func normalizeRef(ref string) (string, error) {
	if ref == "" {
		return "", errEmpty
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid reference %q: %w", ref, err))
	}
	if _, ok := named.(reference.Digested); ok {
		if _, tagged := named.(reference.Tagged); tagged {
			// "name:tag@digest" is stored by digest, as Docker does.
			dg := named.(reference.Digested).Digest()
			named, _ = reference.WithDigest(reference.TrimNamed(named), dg)
		}
		return named.String(), nil
	}
	return reference.TagNameOnly(named).String(), nil
}

// resolve finds the image a user reference means. matched is the stored
// reference it went through ("" when it was an ID or ID prefix).
func resolve(tx *bolt.Tx, ref string) (id digest.Digest, matched string, err error) {
	notFound := errdefs.NotFoundf("No such image: %s", ref)
	images := tx.Bucket(bucketImages)
	if m := fullID.FindStringSubmatch(ref); m != nil {
		id = digest.NewDigestFromEncoded(digest.SHA256, m[2])
		if images.Get([]byte(id)) != nil {
			return id, "", nil
		}
		return "", "", notFound
	}
	if named, perr := reference.ParseNormalizedNamed(ref); perr == nil {
		if norm, nerr := normalizeRef(ref); nerr == nil {
			if v := tx.Bucket(bucketRefs).Get([]byte(norm)); v != nil {
				return digest.Digest(v), norm, nil
			}
		}
		if dg, ok := named.(reference.Digested); ok {
			// A digest known as some image's manifest or config.
			var found digest.Digest
			images.ForEach(func(k, v []byte) error {
				var rec imageRecord
				if json.Unmarshal(v, &rec) == nil && (rec.Manifest == dg.Digest() || string(k) == dg.Digest().String()) {
					found = digest.Digest(k)
				}
				return nil
			})
			if found != "" {
				return found, "", nil
			}
		}
	}
	if m := shortID.FindStringSubmatch(ref); m != nil {
		prefix := []byte("sha256:" + m[2])
		c := images.Cursor()
		k, _ := c.Seek(prefix)
		if k != nil && strings.HasPrefix(string(k), string(prefix)) {
			if k2, _ := c.Next(); k2 != nil && strings.HasPrefix(string(k2), string(prefix)) {
				return "", "", errdefs.NotFoundf("No such image: %s (ambiguous ID prefix)", ref)
			}
			return digest.Digest(k), "", nil
		}
	}
	return "", "", notFound
}
