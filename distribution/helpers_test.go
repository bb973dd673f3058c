package distribution

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/registry"
	"github.com/klauspost/compress/gzip"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"
)

type regMode int

const (
	anonymous regMode = iota
	basicAuth
	tokenAuth
)

const testUser, testPass = "alice", "s3cret"

// newRegistry starts berth's own registry in-process; wrap, when set,
// sits in front of it (to lie, truncate or cut connections).
func newRegistry(t *testing.T, mode regMode, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	cfg := registry.DefaultConfig()
	cfg.Root = t.TempDir()
	cfg.LogLevel = "error"
	if mode != anonymous {
		hash, err := bcrypt.GenerateFromPassword([]byte(testPass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "htpasswd")
		os.WriteFile(p, []byte(testUser+":"+string(hash)+"\n"), 0o600)
		cfg.Auth.Htpasswd = p
		cfg.Auth.Token.Enabled = mode == tokenAuth
	}
	h, _, err := registry.NewHandler(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func newClient(t *testing.T) *Client {
	t.Helper()
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newStore(t *testing.T) (*image.Store, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("image store unpacking needs root (overlay whiteouts, ownership)")
	}
	root := t.TempDir()
	s, err := image.Open(context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, root
}

type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func mkTar(t testing.TB, ents ...tarEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link, ModTime: time.Unix(1700000000, 0)}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if typ == tar.TypeChar {
			hdr.Devmajor, hdr.Devminor = 1, 3
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// testImage builds an image.View from layer tars (gzip-compressed when
// compress is set) with a config whose diff IDs match.
func testImage(t testing.TB, arch string, compress bool, tars ...[]byte) image.View {
	t.Helper()
	cfg := dockerspec.DockerOCIImage{}
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.RootFS.Type = "layers"
	cfg.Config.Cmd = []string{"/bin/sh"}
	created := time.Unix(1700000000, 0).UTC()
	cfg.Created = &created
	var layers []image.Layer
	for _, tb := range tars {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(tb))
		cfg.History = append(cfg.History, ocispec.History{Created: &created, CreatedBy: "test"})
		if compress {
			layers = append(layers, image.BytesLayer(gz(t, tb), ocispec.MediaTypeImageLayerGzip))
		} else {
			layers = append(layers, image.BytesLayer(tb, ocispec.MediaTypeImageLayer))
		}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := image.NewView(raw, layers)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func hostArch() string { return runtime.GOARCH }

// storeFiles lists the store's blobs and snapshot dirs plus anything in
// the ingest area: what must not change after a failed pull.
func storeFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"content/blobs/sha256", "content/ingest", "overlay"} {
		entries, _ := os.ReadDir(filepath.Join(root, sub))
		for _, e := range entries {
			out = append(out, sub+"/"+e.Name())
		}
	}
	return out
}

func dirBytes(t *testing.T, root string) int64 {
	var n int64
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasSuffix(p, "metadata.db") {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
