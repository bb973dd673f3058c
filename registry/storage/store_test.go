package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func openStore(t *testing.T, root string) *Store {
	t.Helper()
	s, err := Open(root, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUploadSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	data := bytes.Repeat([]byte("berth"), 10000)
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		t.Run(string(alg), func(t *testing.T) {
			s := openStore(t, root)
			id, err := s.StartUpload(ctx, "r")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.AppendUpload(ctx, "r", id, 0, 20000, bytes.NewReader(data[:20000])); err != nil {
				t.Fatal(err)
			}
			// A new process: no hash state in memory.
			s2 := openStore(t, root)
			n, err := s2.UploadStatus(ctx, "r", id)
			if err != nil || n != 20000 {
				t.Fatalf("status after restart: %d, %v", n, err)
			}
			if _, err := s2.UploadStatus(ctx, "other", id); err == nil {
				t.Fatal("a session must not be reachable from another repository")
			}
			d := alg.FromBytes(data)
			if _, err := s2.CommitUpload(ctx, "r", id, d, bytes.NewReader(data[20000:])); err != nil {
				t.Fatal(err)
			}
			f, _, err := s2.OpenBlob(ctx, "r", d)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(f)
			f.Close()
			if !bytes.Equal(got, data) {
				t.Fatal("content differs")
			}
		})
	}
}

func TestPurgeUploads(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), nil, Options{UploadTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := s.StartUpload(ctx, "r")
	fresh, _ := s.StartUpload(ctx, "r")
	past := time.Now().Add(-2 * time.Minute)
	_ = os.Chtimes(filepath.Join(s.Root(), "uploads", old, "data"), past, past)
	if n := s.PurgeUploads(ctx); n != 1 {
		t.Fatalf("purged %d, want 1", n)
	}
	if _, err := s.UploadStatus(ctx, "r", old); err == nil {
		t.Fatal("abandoned upload survived")
	}
	if _, err := s.UploadStatus(ctx, "r", fresh); err != nil {
		t.Fatalf("fresh upload purged: %v", err)
	}
}

func putImage(t *testing.T, s *Store, repo, tag string, layer []byte) (manifest, cfg, lay digest.Digest) {
	t.Helper()
	ctx := context.Background()
	c := []byte(`{"os":"linux"}`)
	cfg, lay = digest.FromBytes(c), digest.FromBytes(layer)
	for _, b := range [][]byte{c, layer} {
		if _, err := s.PutBlob(ctx, repo, digest.FromBytes(b), int64(len(b)), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"c","digest":%q,"size":%d},"layers":[{"mediaType":"l","digest":%q,"size":%d}]}`,
		MediaTypeOCIManifest, cfg, len(c), lay, len(layer))
	ref := tag
	if ref == "" {
		ref = digest.FromString(m).String()
	}
	res, err := s.PutManifest(ctx, repo, ref, MediaTypeOCIManifest, []byte(m), nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Digest, cfg, lay
}

func TestGC(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	kept, cfg, keptLayer := putImage(t, s, "app", "v1", []byte("layer one"))
	gone, _, goneLayer := putImage(t, s, "app", "", []byte("layer two"))
	// A referrer of the tagged image survives with it.
	sig := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"c","digest":%q,"size":14},"layers":[],"subject":{"mediaType":"m","digest":%q,"size":1}}`, MediaTypeOCIManifest, cfg, kept))
	sigRes, err := s.PutManifest(ctx, "app", digest.FromBytes(sig).String(), MediaTypeOCIManifest, sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Within the grace period nothing goes.
	res, err := s.GC(ctx, GCOptions{Grace: time.Hour})
	if err != nil || len(res.Manifests)+len(res.Blobs) != 0 {
		t.Fatalf("grace period not honoured: %+v %v", res, err)
	}
	dry, err := s.GC(ctx, GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"app@" + gone.String()}
	if fmt.Sprint(dry.Manifests) != fmt.Sprint(want) {
		t.Fatalf("dry run manifests %v, want %v", dry.Manifests, want)
	}
	blobSet := fmt.Sprint(dry.Blobs)
	if !strings.Contains(blobSet, gone.String()) || !strings.Contains(blobSet, goneLayer.String()) || len(dry.Blobs) != 2 {
		t.Fatalf("dry run blobs %v", dry.Blobs)
	}
	if _, err := s.StatManifest(ctx, "app", gone.String()); err != nil {
		t.Fatal("dry run removed something")
	}
	res, err = s.GC(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Blobs) != 2 {
		t.Fatalf("removed %v", res.Blobs)
	}
	if _, err := s.StatManifest(ctx, "app", gone.String()); err == nil {
		t.Fatal("untagged manifest survived")
	}
	if _, err := os.Stat(s.blobPath(goneLayer)); err == nil {
		t.Fatal("unreferenced layer survived")
	}
	for _, d := range []digest.Digest{kept, sigRes.Digest} {
		if _, err := s.StatManifest(ctx, "app", d.String()); err != nil {
			t.Fatalf("kept manifest %s removed: %v", d, err)
		}
	}
	if _, err := s.StatBlob(ctx, "app", keptLayer); err != nil {
		t.Fatalf("kept layer removed: %v", err)
	}
}

func TestPutBlobRefusesMismatch(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	d := digest.FromString("expected")
	if _, err := s.PutBlob(ctx, "r", d, -1, strings.NewReader("other")); err == nil {
		t.Fatal("mismatched content accepted")
	}
	if _, err := s.PutBlob(ctx, "r", digest.FromString("abc"), 10, strings.NewReader("abc")); err == nil {
		t.Fatal("size mismatch accepted")
	}
	ents, _ := os.ReadDir(filepath.Join(s.Root(), "tmp"))
	if len(ents) != 0 || exists(s.blobPath(d)) {
		t.Fatal("refused content left behind")
	}
}
