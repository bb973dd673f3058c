package distribution

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/image"
	regapi "github.com/berth-dev/berth/registry/api"
	"github.com/berth-dev/berth/registry/auth"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// openStoreAt is openStore with the root, to look for leftovers.
func openStoreAt(t *testing.T) (*image.Store, string) {
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

// leftovers lists the blobs, ingest files and snapshot dirs of a store.
func leftovers(root string) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		depth := strings.Count(rel, "/")
		if (strings.HasPrefix(rel, "content/blobs/sha256/") && depth == 3) || (strings.HasPrefix(rel, "content/ingest/") && depth == 2) || (strings.HasPrefix(rel, "overlay/") && depth == 1) {
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// craftedImage is an image a real registry would refuse to hold.
type craftedImage struct {
	manifest, config []byte
	blobs            map[digest.Digest][]byte
	claim            string // a Docker-Content-Digest header to send with the manifest
}

func craft(layers [][]byte, tamper func(cfg map[string]any)) *craftedImage {
	ci := &craftedImage{blobs: map[digest.Digest][]byte{}}
	var diffIDs []string
	var descs []ocispec.Descriptor
	for _, l := range layers {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(l)
		zw.Close()
		d := digest.FromBytes(gz.Bytes())
		ci.blobs[d] = gz.Bytes()
		diffIDs = append(diffIDs, digest.FromBytes(l).String())
		descs = append(descs, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: int64(gz.Len())})
	}
	cfg := map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}}
	if tamper != nil {
		tamper(cfg)
	}
	ci.config, _ = json.Marshal(cfg)
	cd := digest.FromBytes(ci.config)
	ci.blobs[cd] = ci.config
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(ci.config))}, Layers: descs}
	m.SchemaVersion = 2
	ci.manifest, _ = json.Marshal(m)
	return ci
}

// serve is a read-only registry for the crafted image; blob, when set,
// answers layer requests.
func (ci *craftedImage) serve(t *testing.T, blob func(w http.ResponseWriter, r *http.Request, b []byte)) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
		case strings.Contains(r.URL.Path, "/manifests/"):
			w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
			if ci.claim != "" {
				w.Header().Set("Docker-Content-Digest", ci.claim)
			}
			w.Write(ci.manifest)
		case strings.Contains(r.URL.Path, "/blobs/"):
			d := digest.Digest(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
			b, ok := ci.blobs[d]
			if !ok {
				http.NotFound(w, r)
				return
			}
			if blob != nil && d != digest.FromBytes(ci.config) {
				blob(w, r, b)
				return
			}
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func tarOf(t *testing.T, hdrs ...*tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// Hostile layers, lying configs and blobs longer than said are refused
// with a clear message, and nothing of them stays in the store.
func TestPullRefusesHostileImages(t *testing.T) {
	ctx := context.Background()
	good := tarOf(t, &tar.Header{Name: "ok", Mode: 0o644, Size: 5, Typeflag: tar.TypeReg})
	lying := craft([][]byte{good}, nil)
	lying.claim = digest.FromString("another manifest").String()
	// 100 MB of one byte repeated, about 100 KB of gzip: past 10x its size plus 64 MiB.
	bomb := tarOf(t, &tar.Header{Name: "zeros", Mode: 0o644, Size: 100 << 20, Typeflag: tar.TypeReg})
	for _, tc := range []struct {
		name   string
		img    *craftedImage
		blob   func(w http.ResponseWriter, r *http.Request, b []byte)
		want   string
		maxExp int64
	}{
		{name: "manifest digest header lies", img: lying, want: "the registry says its digest is"},
		{name: "gzip bomb", img: craft([][]byte{bomb}, nil), want: "decompression bomb", maxExp: 10},
		{name: "config diff IDs lie", img: craft([][]byte{good}, func(c map[string]any) {
			c["rootfs"] = map[string]any{"type": "layers", "diff_ids": []string{digest.FromString("other").String()}}
		}), want: "diff ID mismatch"},
		{name: "blob longer than its descriptor", img: craft([][]byte{good}, nil),
			blob: func(w http.ResponseWriter, r *http.Request, b []byte) {
				w.Write(append(bytes.Clone(b), make([]byte, 100)...))
			},
			want: "larger than"},
		{name: "blob truncated for good", img: craft([][]byte{good}, nil),
			blob: func(w http.ResponseWriter, r *http.Request, b []byte) {
				w.Header().Set("Content-Length", fmt.Sprint(len(b)))
				w.Write(b[:len(b)/2])
			}, want: "truncated"},
		{name: "path traversal", img: craft([][]byte{tarOf(t, &tar.Header{Name: "../../escape", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})}, nil), want: "escape"},
		{name: "hardlink escape", img: craft([][]byte{tarOf(t, &tar.Header{Name: "hl", Linkname: "../../../etc/passwd", Typeflag: tar.TypeLink})}, nil), want: "tar entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.img.serve(t, tc.blob)
			s, root := openStoreAt(t)
			_, err := Pull(ctx, s, NewClient(Options{}, registry.AuthConfig{}), named(t, host+"/bad/img:1"), PullOptions{MaxExpansion: tc.maxExp})
			if err == nil {
				t.Fatal("the pull succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if left := leftovers(root); len(left) > 0 {
				t.Fatalf("the failed pull left %v", left)
			}
		})
	}
	// A symlink pointing out is kept as a link, and files written through
	// it stay inside the layer.
	escape := filepath.Join(t.TempDir(), "outside")
	os.Mkdir(escape, 0o755)
	img := craft([][]byte{tarOf(t,
		&tar.Header{Name: "link", Linkname: escape, Typeflag: tar.TypeSymlink, Mode: 0o777},
		&tar.Header{Name: "link/owned", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})}, nil)
	s, _ := openStoreAt(t)
	Pull(ctx, s, NewClient(Options{}, registry.AuthConfig{}), named(t, img.serve(t, nil)+"/bad/link:1"), PullOptions{})
	if _, err := os.Stat(filepath.Join(escape, "owned")); err == nil {
		t.Fatal("a symlinked layer wrote outside its snapshot")
	}
}

// A pull whose client goes away leaves nothing; a connection broken
// midway is resumed where it stopped.
func TestPullInterruptedAndResumed(t *testing.T) {
	ctx := context.Background()
	srv := registryServer(t, regapi.Options{})
	host := strings.TrimPrefix(srv.URL, "http://")
	src := openStore(t)
	ref := host + "/i/img:1"
	img, err := src.Import(ctx, bytes.NewReader(rootfsTar(t, t.Name())), image.ImportOptions{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(Options{}, registry.AuthConfig{})
	if _, err := Push(ctx, src, c, named(t, ref).(reference.NamedTagged), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	front := func(mw func(w http.ResponseWriter, r *http.Request) bool) string {
		f := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !mw(w, r) {
				srv.Config.Handler.ServeHTTP(w, r)
			}
		}))
		t.Cleanup(f.Close)
		return strings.TrimPrefix(f.URL, "http://")
	}
	// The layer stalls; the client gives up.
	stall := front(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && !strings.Contains(r.URL.Path, img.ID.Encoded()) {
			w.Header().Set("Content-Length", "1000000")
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return true
		}
		return false
	})
	s, root := openStoreAt(t)
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Pull(cctx, s, c, named(t, stall+"/i/img:1"), PullOptions{}); err == nil {
		t.Fatal("the pull survived its cancellation")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the cancelled pull took %v to stop", d)
	}
	if left := leftovers(root); len(left) > 0 {
		t.Fatalf("the cancelled pull left %v", left)
	}
	// The first two downloads of the layer break halfway.
	var broken atomic.Int32
	flaky := front(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") || r.Header.Get("Range") != "" || strings.Contains(r.URL.Path, img.ID.Encoded()) {
			return false
		}
		rec := httptest.NewRecorder()
		srv.Config.Handler.ServeHTTP(rec, r)
		if broken.Add(1) > 2 {
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return true
		}
		conn, buf, _ := w.(http.Hijacker).Hijack()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", rec.Body.Len())
		buf.Write(rec.Body.Bytes()[:rec.Body.Len()/2])
		buf.Flush()
		conn.Close()
		return true
	})
	got, err := Pull(ctx, s, c, named(t, flaky+"/i/img:1"), PullOptions{})
	if err != nil {
		t.Fatalf("pull over a breaking connection: %v", err)
	}
	if got.ID != img.ID || broken.Load() == 0 {
		t.Fatalf("pulled %s (breaks %d), want %s", got.ID, broken.Load(), img.ID)
	}
}

// rmi of a pulled image leaves no blob and no snapshot.
func TestNoLeakAfterDelete(t *testing.T) {
	ctx := context.Background()
	img := craft([][]byte{rootfsTar(t, "gc")}, nil)
	host := img.serve(t, nil)
	s, root := openStoreAt(t)
	if _, err := Pull(ctx, s, NewClient(Options{}, registry.AuthConfig{}), named(t, host+"/gc/img:1"), PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(leftovers(root)) == 0 {
		t.Fatal("the pull stored nothing")
	}
	if _, err := s.Delete(ctx, host+"/gc/img:1", false, true, nil); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(root); len(left) > 0 {
		t.Fatalf("after rmi the store still holds %v", left)
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`)
	f.Add(`Basic realm="x"`)
	f.Add(`Bearer realm="unterminated`)
	f.Fuzz(func(t *testing.T, h string) { parseChallenge(h) })
}

func FuzzDecodeAuthHeader(f *testing.F) {
	f.Add("eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAifQ==")
	f.Add("e30=")
	f.Fuzz(func(t *testing.T, h string) { DecodeAuthHeader(h) })
}

// Without an X-Registry-Auth credential, the daemon user's config.json
// serves: its auths entries and credential helpers.
func TestKeychainFromConfigFile(t *testing.T) {
	srv := registryServer(t, regapi.Options{Authorizer: &auth.Basic{Users: htpasswd(t)}})
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	src := openStore(t)
	ref := host + "/team/kc:1"
	if _, err := src.Import(ctx, bytes.NewReader(rootfsTar(t, t.Name())), image.ImportOptions{Ref: ref}); err != nil {
		t.Fatal(err)
	}
	if _, err := Push(ctx, src, NewClient(Options{}, registry.AuthConfig{Username: "alice", Password: "secret"}), named(t, ref).(reference.NamedTagged), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A credential helper on PATH.
	helper := filepath.Join(dir, "docker-credential-berthtest")
	os.WriteFile(helper, []byte("#!/bin/sh\nread server\necho '{\"ServerURL\":\"'$server'\",\"Username\":\"alice\",\"Secret\":\"secret\"}'\n"), 0o755)
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	for name, cfg := range map[string]string{
		"auths":       `{"auths":{"` + host + `":{"auth":"YWxpY2U6c2VjcmV0"}}}`,
		"credHelpers": `{"credHelpers":{"` + host + `":"berthtest"}}`,
		"none":        `{}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			os.WriteFile(path, []byte(cfg), 0o600)
			c := NewClient(Options{Keychain: ConfigKeychain(path)}, registry.AuthConfig{})
			_, err := Pull(ctx, openStore(t), c, named(t, ref), PullOptions{})
			if name == "none" {
				if err == nil {
					t.Fatal("pull without credentials succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("pull with %s: %v", name, err)
			}
		})
	}
}
