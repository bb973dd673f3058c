package tarexport

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/image"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func openStore(t testing.TB) (*image.Store, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the image store unpacks layers as root (overlay whiteouts, owners)")
	}
	root := t.TempDir()
	s, err := image.Open(context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, root
}

type entry struct {
	name string
	body []byte
	typ  byte
	link string
}

func mkTar(t testing.TB, ents ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link, ModTime: time.Unix(1700000000, 0)}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	tw.Close()
	return buf.Bytes()
}

// leftovers are the blobs, snapshots and ingest files of a store.
func leftovers(root string) []string {
	var out []string
	for _, sub := range []string{"content/blobs/sha256", "content/ingest", "overlay"} {
		entries, _ := os.ReadDir(filepath.Join(root, sub))
		for _, e := range entries {
			out = append(out, sub+"/"+e.Name())
		}
	}
	return out
}

// berth save, then berth load elsewhere: same image, same tags, same files.
func TestSaveLoadRoundTrip(t *testing.T) {
	ctx := context.Background()
	src, _ := openStore(t)
	layer := mkTar(t, entry{name: "etc/", typ: tar.TypeDir}, entry{name: "etc/motd", body: []byte("round trip\n")})
	img, err := src.Import(ctx, bytes.NewReader(layer), image.ImportOptions{Ref: "rt/app:1"})
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if err := Save(ctx, src, []string{"rt/app:1"}, &archive); err != nil {
		t.Fatal(err)
	}
	dst, _ := openStore(t)
	loaded, err := Load(ctx, dst, bytes.NewReader(archive.Bytes()), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].ID != img.ID || len(loaded[0].Tags) != 1 || loaded[0].Tags[0] != "rt/app:1" {
		t.Fatalf("loaded %+v, want %s tagged rt/app:1", loaded, img.ID)
	}
	got, err := dst.Get(ctx, "rt/app:1")
	if err != nil || got.ID != img.ID {
		t.Fatalf("get: %v", err)
	}
}

// An archive as Docker 20.10 writes it: <id>/layer.tar, <config>.json,
// manifest.json and repositories.
func TestLoadDocker2010Archive(t *testing.T) {
	ctx := context.Background()
	layer := mkTar(t, entry{name: "hello", body: []byte("from docker 20.10\n")})
	diffID := digest.FromBytes(layer)
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
		"config": map[string]any{"Cmd": []string{"/hello"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID.String()}},
	})
	id := digest.FromBytes(cfg)
	v1 := strings.Repeat("ab", 32)
	manifest, _ := json.Marshal([]map[string]any{{"Config": id.Encoded() + ".json", "RepoTags": []string{"legacy/img:old"}, "Layers": []string{v1 + "/layer.tar"}}})
	archive := mkTar(t,
		entry{name: v1 + "/", typ: tar.TypeDir},
		entry{name: v1 + "/VERSION", body: []byte("1.0")},
		entry{name: v1 + "/json", body: []byte(`{"id":"` + v1 + `"}`)},
		entry{name: v1 + "/layer.tar", body: layer},
		entry{name: id.Encoded() + ".json", body: cfg},
		entry{name: "manifest.json", body: manifest},
		entry{name: "repositories", body: []byte(`{"legacy/img":{"old":"` + v1 + `"}}`)},
	)
	s, _ := openStore(t)
	loaded, err := Load(ctx, s, bytes.NewReader(archive), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].ID != id || loaded[0].Tags[0] != "legacy/img:old" {
		t.Fatalf("loaded %+v, want %s", loaded, id)
	}
}

// A plain OCI layout whose ref name is a bare tag loads untagged.
func TestLoadOCILayoutBareRefName(t *testing.T) {
	ctx := context.Background()
	layer := mkTar(t, entry{name: "f", body: []byte("oci")})
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest.FromBytes(layer).String()}}})
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}}})
	idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m)), Annotations: map[string]string{ocispec.AnnotationRefName: "latest"}}}})
	blob := func(b []byte) entry { return entry{name: "blobs/sha256/" + digest.FromBytes(b).Encoded(), body: b} }
	archive := mkTar(t, entry{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)}, entry{name: "index.json", body: idx}, blob(layer), blob(cfg), blob(m))
	s, _ := openStore(t)
	loaded, err := Load(ctx, s, bytes.NewReader(archive), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || len(loaded[0].Tags) != 0 || loaded[0].ID != digest.FromBytes(cfg) {
		t.Fatalf("loaded %+v", loaded)
	}
	img, err := s.Get(ctx, loaded[0].ID.String())
	if err != nil || img.ManifestDigest != digest.FromBytes(m) {
		t.Fatalf("the layout's manifest was not kept: %v", err)
	}
}

// Archives whose paths climb out, or whose contents lie, are refused and
// leave nothing behind.
func TestLoadRefusesHostileArchives(t *testing.T) {
	ctx := context.Background()
	layer := mkTar(t, entry{name: "x", body: []byte("x")})
	cfg, _ := json.Marshal(map[string]any{"os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest.FromBytes(layer).String()}}})
	manifest := func(config string, layers ...string) []byte {
		b, _ := json.Marshal([]map[string]any{{"Config": config, "Layers": layers}})
		return b
	}
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "cfg.json"), cfg, 0o644)
	os.WriteFile(filepath.Join(outside, "layer.tar"), layer, 0o644)
	for _, tc := range []struct {
		name string
		tar  []byte
	}{
		{"entry climbing out", mkTar(t, entry{name: "../../escape", body: []byte("x")})},
		{"config outside the archive", mkTar(t, entry{name: "manifest.json", body: manifest("../../../../"+outside+"/cfg.json", "l.tar")}, entry{name: "l.tar", body: layer})},
		{"layer through a symlink out", mkTar(t, entry{name: "out", typ: tar.TypeSymlink, link: outside}, entry{name: "c.json", body: cfg}, entry{name: "manifest.json", body: manifest("c.json", "out/layer.tar")})},
		{"diff ID lies", mkTar(t, entry{name: "c.json", body: cfg}, entry{name: "l.tar", body: mkTar(t, entry{name: "y", body: []byte("other")})}, entry{name: "manifest.json", body: manifest("c.json", "l.tar")})},
		{"not an archive", []byte("hello")},
		{"empty archive", mkTar(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, root := openStore(t)
			tmp := t.TempDir()
			if _, err := Load(ctx, s, bytes.NewReader(tc.tar), tmp); err == nil {
				t.Fatal("the load succeeded")
			}
			if left := leftovers(root); len(left) > 0 {
				t.Fatalf("the failed load left %v", left)
			}
			if e, _ := os.ReadDir(tmp); len(e) > 0 {
				t.Fatalf("the failed load left %d entries in its temporary directory", len(e))
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(tmp), "escape")); err == nil {
				t.Fatal("an archive entry escaped")
			}
		})
	}
}

// FuzzLoad feeds arbitrary manifest.json, index.json and image configs to Load.
func FuzzLoad(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("the image store unpacks layers as root")
	}
	f.Add([]byte(`[{"Config":"c.json","RepoTags":["a:b"],"Layers":["l.tar"]}]`), []byte(`{"schemaVersion":2,"manifests":[]}`), []byte(nil))
	f.Add([]byte(`[{"Config":"../../etc/passwd","Layers":["/dev/zero"]}]`), []byte(``), []byte(nil))
	f.Add([]byte(``), []byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}]}`), []byte(nil))
	f.Add([]byte(`[{"Config":"c.json","Layers":["l.tar"]}]`), []byte(nil), []byte(`{"rootfs":{"diff_ids":["sha256:zz"]},"history":[{"empty_layer":true}]}`))
	root := f.TempDir()
	s, err := image.Open(context.Background(), root, nil)
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	layer := mkTar(f, entry{name: "x", body: []byte("x")})
	cfg := []byte(`{"os":"linux","rootfs":{"type":"layers","diff_ids":["` + digest.FromBytes(layer).String() + `"]}}`)
	f.Fuzz(func(t *testing.T, manifest, index, config []byte) {
		if len(config) == 0 {
			config = cfg
		}
		ents := []entry{{name: "c.json", body: config}, {name: "l.tar", body: layer}}
		if len(manifest) > 0 {
			ents = append(ents, entry{name: "manifest.json", body: manifest})
		}
		if len(index) > 0 {
			ents = append(ents, entry{name: "index.json", body: index})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		Load(ctx, s, bytes.NewReader(mkTar(t, ents...)), root)
	})
}
