package distribution

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/registry"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"
)

// testRegistry is an in-process `berth registry serve`.
type testRegistry struct {
	srv  *httptest.Server
	host string
	// hits counts requests by "METHOD kind" (kind: manifests, blobs, uploads).
	hits func(string) int64
}

type regOpts struct {
	users map[string]string // htpasswd users
	token bool
	wrap  func(http.Handler) http.Handler
}

func newRegistry(t *testing.T, o regOpts) *testRegistry {
	t.Helper()
	c := registry.DefaultConfig()
	c.Root = t.TempDir()
	if len(o.users) > 0 {
		var buf bytes.Buffer
		for u, p := range o.users {
			h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&buf, "%s:%s\n", u, h)
		}
		c.Auth.Htpasswd = filepath.Join(c.Root, "htpasswd")
		if err := os.WriteFile(c.Auth.Htpasswd, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.Auth.Token.Enabled = o.token
	h, _, err := registry.NewHandler(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]*atomic.Int64{}
	for _, k := range []string{"GET blobs", "HEAD blobs", "POST uploads", "GET manifests", "PUT manifests"} {
		counts[k] = new(atomic.Int64)
	}
	count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := ""
		switch {
		case strings.Contains(r.URL.Path, "/blobs/uploads"):
			kind = "uploads"
		case strings.Contains(r.URL.Path, "/blobs/"):
			kind = "blobs"
		case strings.Contains(r.URL.Path, "/manifests/"):
			kind = "manifests"
		}
		if c := counts[r.Method+" "+kind]; c != nil {
			c.Add(1)
		}
		h.ServeHTTP(w, r)
	})
	var handler http.Handler = count
	if o.wrap != nil {
		handler = o.wrap(count)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return &testRegistry{srv: srv, host: strings.TrimPrefix(srv.URL, "http://"), hits: func(k string) int64 { return counts[k].Load() }}
}

func newStore(t *testing.T) *image.Store {
	t.Helper()
	s, err := image.Open(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// layerTar builds a tar of files name -> content.
func layerTar(t testing.TB, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

// localImage commits a two-layer image tagged ref.
func localImage(t *testing.T, s *image.Store, ref string) *image.Image {
	t.Helper()
	ctx := context.Background()
	rnd := make([]byte, 300<<10)
	rand.Read(rnd)
	base, err := s.Commit(ctx, image.CommitOptions{Layer: bytes.NewReader(layerTar(t, map[string]string{"etc/os": "berth\n", "big": string(rnd)})), CreatedBy: "base"})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Commit(ctx, image.CommitOptions{Parent: base.ID, Layer: bytes.NewReader(layerTar(t, map[string]string{"app/hello": "hi\n"})), CreatedBy: "app", Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPushPullRoundTrip(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, regOpts{})
	c := New(Options{})
	src := newStore(t)
	ref := reg.host + "/team/app:v1"
	img := localImage(t, src, ref)

	res, err := c.Push(ctx, src, ref, PushOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Tag != "v1" {
		t.Fatalf("push results %+v", res)
	}
	pushed := res[0].Digest

	dst := newStore(t)
	pr, err := c.Pull(ctx, dst, ref, PullOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Image.ID != img.ID {
		t.Fatalf("pulled image ID %s, pushed %s", pr.Image.ID, img.ID)
	}
	if pr.Digest != pushed || pr.Image.ManifestDigest != pushed {
		t.Fatalf("pulled digest %s (manifest %s), pushed %s", pr.Digest, pr.Image.ManifestDigest, pushed)
	}
	want := reg.host + "/team/app@" + pushed.String()
	if len(pr.Image.RepoDigests) != 1 || pr.Image.RepoDigests[0] != want {
		t.Fatalf("RepoDigests %v, want %s", pr.Image.RepoDigests, want)
	}
	// Pulling again fetches no blob.
	before := reg.hits("GET blobs")
	pr2, err := c.Pull(ctx, dst, ref, PullOptions{}, nil)
	if err != nil || !pr2.UpToDate {
		t.Fatalf("second pull: %+v %v", pr2, err)
	}
	if n := reg.hits("GET blobs") - before; n != 1 { // the config only
		t.Fatalf("second pull fetched %d blobs, want 1 (config)", n)
	}
	// Pulling by digest gives the same image.
	pr3, err := c.Pull(ctx, newStore(t), reg.host+"/team/app@"+pushed.String(), PullOptions{}, nil)
	if err != nil || pr3.Image.ID != img.ID {
		t.Fatalf("pull by digest: %v %v", pr3, err)
	}
	// Re-pushing the pulled image sends its manifest byte for byte.
	res2, err := c.Push(ctx, dst, ref, PushOptions{}, nil)
	if err != nil || res2[0].Digest != pushed {
		t.Fatalf("re-push: %+v %v, want %s", res2, err, pushed)
	}
	// A push to another repository of the same registry mounts the layers.
	if err := dst.Tag(ctx, img.ID, reg.host+"/other/app:v2"); err != nil {
		t.Fatal(err)
	}
	uploads := reg.hits("POST uploads")
	var msgs bytes.Buffer
	if _, err := c.Push(ctx, dst, reg.host+"/other/app:v2", PushOptions{}, jsonOut(&msgs)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msgs.String(), "Mounted from team/app") {
		t.Fatalf("push to other repo did not mount: %s", msgs.String())
	}
	if n := reg.hits("POST uploads") - uploads; n > 3 { // 2 mounts + config
		t.Fatalf("push to other repo opened %d uploads", n)
	}
}

func TestPullProgressMessages(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, regOpts{})
	c := New(Options{})
	src := newStore(t)
	ref := reg.host + "/p/img:1"
	localImage(t, src, ref)
	if _, err := c.Push(ctx, src, ref, PushOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := c.Pull(ctx, newStore(t), ref, PullOptions{}, jsonOut(&buf)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{`{"status":"Pulling from p/img","id":"1"}`, `"Pulling fs layer"`, `"Downloading"`, `"Verifying Checksum"`, `"Download complete"`, `"Pull complete"`, `"status":"Digest: sha256:`, `"Status: Downloaded newer image for ` + ref + `"`} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output lacks %s:\n%s", want, out)
		}
	}
}

func TestAuth(t *testing.T) {
	ctx := context.Background()
	users := map[string]string{"alice": "s3cret"}
	for _, tc := range []struct {
		name  string
		token bool
	}{{"basic", false}, {"bearer", true}} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry(t, regOpts{users: users, token: tc.token})
			src := newStore(t)
			ref := reg.host + "/alice/img:1"
			img := localImage(t, src, ref)
			anon := New(Options{})
			_, err := anon.Push(ctx, src, ref, PushOptions{}, nil)
			if !errdefs.IsUnauthorized(err) {
				t.Fatalf("anonymous push: %v, want unauthorized", err)
			}
			bad := New(Options{})
			if _, err := bad.Login(ctx, AuthConfig{Username: "alice", Password: "nope", ServerAddress: reg.host}); !errdefs.IsUnauthorized(err) {
				t.Fatalf("login with a wrong password: %v", err)
			}
			good := AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: reg.host}
			c := New(Options{})
			if _, err := c.Login(ctx, good); err != nil {
				t.Fatalf("login: %v", err)
			}
			if _, err := c.Push(ctx, src, ref, PushOptions{Auth: good}, nil); err != nil {
				t.Fatal(err)
			}
			// Credentials from a config.json keychain.
			cfgPath := filepath.Join(t.TempDir(), "config.json")
			cf, _ := LoadConfigFile(cfgPath)
			if err := cf.Store(reg.host, good); err != nil {
				t.Fatal(err)
			}
			cf2, err := LoadConfigFile(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			kc := New(Options{Keychain: cf2.Get})
			pr, err := kc.Pull(ctx, newStore(t), ref, PullOptions{}, nil)
			if err != nil || pr.Image.ID != img.ID {
				t.Fatalf("pull with keychain: %v", err)
			}
			// And from an X-Registry-Auth header.
			hdr, err := DecodeAuthHeader(EncodeAuthHeader(good))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := New(Options{}).Pull(ctx, newStore(t), ref, PullOptions{Auth: hdr}, nil); err != nil {
				t.Fatalf("pull with header auth: %v", err)
			}
		})
	}
}

// jsonOut renders progress as dockerd does.
func jsonOut(w io.Writer) progressOutput { return newJSONOut(w) }

// storeLeftovers lists what a store has besides its bookkeeping: blobs,
// ingest files and snapshot dirs.
func storeLeftovers(t *testing.T, s *image.Store, root string) []string {
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

func openStore(t *testing.T) (*image.Store, string) {
	root := t.TempDir()
	s, err := image.Open(context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, root
}

// hostileRegistry serves one hand-made image; tamper changes its parts.
type hostileImage struct {
	manifest, config []byte
	blobs            map[digest.Digest][]byte
}

func makeImage(t *testing.T, layers [][]byte, tamper func(cfg map[string]any)) *hostileImage {
	hi := &hostileImage{blobs: map[digest.Digest][]byte{}}
	var diffIDs []string
	var descs []ocispec.Descriptor
	for _, l := range layers {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(l)
		zw.Close()
		d := digest.FromBytes(gz.Bytes())
		hi.blobs[d] = gz.Bytes()
		diffIDs = append(diffIDs, digest.FromBytes(l).String())
		descs = append(descs, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: int64(gz.Len())})
	}
	cfg := map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}}
	if tamper != nil {
		tamper(cfg)
	}
	hi.config, _ = json.Marshal(cfg)
	cd := digest.FromBytes(hi.config)
	hi.blobs[cd] = hi.config
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(hi.config))}, Layers: descs}
	m.SchemaVersion = 2
	hi.manifest, _ = json.Marshal(m)
	return hi
}

// serve is a minimal read-only registry for images a real one would
// refuse to store; serveBlob may alter what is sent.
func (hi *hostileImage) serve(t *testing.T, serveBlob func(w http.ResponseWriter, r *http.Request, b []byte)) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
		case strings.Contains(r.URL.Path, "/manifests/"):
			w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
			w.Write(hi.manifest)
		case strings.Contains(r.URL.Path, "/blobs/"):
			d := digest.Digest(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
			b, ok := hi.blobs[d]
			if !ok {
				http.NotFound(w, r)
				return
			}
			if serveBlob != nil && d != digest.FromBytes(hi.config) {
				serveBlob(w, r, b)
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

func tarEntries(t *testing.T, hdrs ...*tar.Header) []byte {
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

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	good := layerTar(t, map[string]string{"ok": "fine\n"})
	for _, tc := range []struct {
		name   string
		img    func(t *testing.T) *hostileImage
		blob   func(w http.ResponseWriter, r *http.Request, b []byte)
		digest bool // pull by a digest other than the manifest's
		want   string
	}{
		{name: "lying manifest digest", img: func(t *testing.T) *hostileImage { return makeImage(t, [][]byte{good}, nil) }, digest: true, want: "manifest verification failed"},
		{name: "lying layer digest", img: func(t *testing.T) *hostileImage { return makeImage(t, [][]byte{good}, nil) },
			blob: func(w http.ResponseWriter, r *http.Request, b []byte) {
				c := bytes.Clone(b)
				c[len(c)-5] ^= 0xff
				w.Write(c)
			}, want: ""},
		{name: "truncated blob", img: func(t *testing.T) *hostileImage { return makeImage(t, [][]byte{good}, nil) },
			blob: func(w http.ResponseWriter, r *http.Request, b []byte) {
				w.Header().Set("Content-Length", fmt.Sprint(len(b)))
				w.Write(b[:len(b)/2])
			}, want: "truncated"},
		{name: "blob longer than descriptor", img: func(t *testing.T) *hostileImage { return makeImage(t, [][]byte{good}, nil) },
			blob: func(w http.ResponseWriter, r *http.Request, b []byte) {
				w.Write(append(bytes.Clone(b), make([]byte, 100)...))
			}, want: "larger than"},
		{name: "config diff IDs lie", img: func(t *testing.T) *hostileImage {
			return makeImage(t, [][]byte{good}, func(c map[string]any) {
				c["rootfs"] = map[string]any{"type": "layers", "diff_ids": []string{digest.FromString("other").String()}}
			})
		}, want: "diff ID mismatch"},
		{name: "path traversal", img: func(t *testing.T) *hostileImage {
			return makeImage(t, [][]byte{tarEntries(t, &tar.Header{Name: "../../escape", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})}, nil)
		}, want: "escape"},
		{name: "symlink escape", img: func(t *testing.T) *hostileImage {
			return makeImage(t, [][]byte{tarEntries(t,
				&tar.Header{Name: "link", Linkname: "/../../../../tmp", Typeflag: tar.TypeSymlink, Mode: 0o777},
				&tar.Header{Name: "link/owned", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})}, nil)
		}, want: ""},
		{name: "hardlink escape", img: func(t *testing.T) *hostileImage {
			return makeImage(t, [][]byte{tarEntries(t, &tar.Header{Name: "hl", Linkname: "../../../etc/passwd", Typeflag: tar.TypeLink})}, nil)
		}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hi := tc.img(t)
			host := hi.serve(t, tc.blob)
			ref := host + "/bad/img:1"
			if tc.digest {
				ref = host + "/bad/img@" + digest.FromString("not it").String()
			}
			s, root := openStore(t)
			_, err := New(Options{Retries: 1}).Pull(ctx, s, ref, PullOptions{}, nil)
			if err == nil {
				// A refused symlink target may be confined instead: then
				// nothing may have left the layer dir.
				if tc.name == "symlink escape" {
					if _, serr := os.Stat("/tmp/owned"); serr == nil {
						t.Fatal("symlink escape wrote /tmp/owned")
					}
					return
				}
				t.Fatalf("pull of %s succeeded", tc.name)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if left := storeLeftovers(t, s, root); len(left) > 0 {
				t.Fatalf("failed pull left %v", left)
			}
			if imgs, _ := s.List(ctx); len(imgs) != 0 {
				t.Fatalf("failed pull left %d images", len(imgs))
			}
		})
	}
}

func TestInterruptedPullResumes(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, regOpts{})
	src := newStore(t)
	ref := reg.host + "/i/img:1"
	img := localImage(t, src, ref)
	c := New(Options{})
	if _, err := c.Push(ctx, src, ref, PushOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	// A client that goes away mid-download: nothing stays.
	var cut atomic.Bool
	slow := newRegistryWrap(t, reg, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method == "GET" && strings.Contains(r.URL.Path, "/blobs/") && cut.Load() {
			time.Sleep(2 * time.Second)
		}
		next.ServeHTTP(w, r)
	})
	s, root := openStore(t)
	cut.Store(true)
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := c.Pull(cctx, s, slow+"/i/img:1", PullOptions{}, nil); err == nil {
		t.Fatal("pull survived its cancellation")
	}
	if left := storeLeftovers(t, s, root); len(left) > 0 {
		t.Fatalf("cancelled pull left %v", left)
	}
	cut.Store(false)
	// Connections broken mid-blob are resumed with Range requests.
	var broken atomic.Int32
	flaky := newRegistryWrap(t, reg, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method == "GET" && strings.Contains(r.URL.Path, "/blobs/") && r.Header.Get("Range") == "" && broken.Add(1) <= 2 {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			if rec.Body.Len() > 1000 {
				hj, _ := w.(http.Hijacker)
				conn, buf, _ := hj.Hijack()
				fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", rec.Body.Len())
				buf.Write(rec.Body.Bytes()[:rec.Body.Len()/2])
				buf.Flush()
				conn.Close()
				return
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		next.ServeHTTP(w, r)
	})
	pr, err := c.Pull(ctx, s, flaky+"/i/img:1", PullOptions{}, nil)
	if err != nil {
		t.Fatalf("pull over a flaky connection: %v", err)
	}
	if pr.Image.ID != img.ID {
		t.Fatalf("pulled %s, want %s", pr.Image.ID, img.ID)
	}
}

// newRegistryWrap fronts reg with a middleware.
func newRegistryWrap(t *testing.T, reg *testRegistry, mw func(w http.ResponseWriter, r *http.Request, next http.Handler)) string {
	next := reg.srv.Config.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mw(w, r, next) }))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

var _ = errors.New

// TestNoLeaksAfterDelete pulls, deletes and checks that the store holds
// no blob and no snapshot any more.
func TestNoLeaksAfterDelete(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, regOpts{})
	src := newStore(t)
	ref := reg.host + "/gc/img:1"
	localImage(t, src, ref)
	c := New(Options{})
	if _, err := c.Push(ctx, src, ref, PushOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	s, root := openStore(t)
	if _, err := c.Pull(ctx, s, ref, PullOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if len(storeLeftovers(t, s, root)) == 0 {
		t.Fatal("pull stored nothing")
	}
	if _, err := s.Delete(ctx, ref, false, true, nil); err != nil {
		t.Fatal(err)
	}
	if left := storeLeftovers(t, s, root); len(left) > 0 {
		t.Fatalf("after delete the store still holds %v", left)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := newStore(t)
	img := localImage(t, src, "docker.io/library/round:trip")
	var buf bytes.Buffer
	if err := Save(ctx, src, []string{"round:trip"}, &buf); err != nil {
		t.Fatal(err)
	}
	dst := newStore(t)
	var got []LoadResult
	if err := Load(ctx, dst, bytes.NewReader(buf.Bytes()), t.TempDir(), func(r LoadResult) { got = append(got, r) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != img.ID || len(got[0].Tags) != 1 || got[0].Tags[0] != "round:trip" {
		t.Fatalf("loaded %+v, want %s round:trip", got, img.ID)
	}
	loaded, err := dst.Get(ctx, "round:trip")
	if err != nil || loaded.ManifestDigest != img.ManifestDigest {
		t.Fatalf("loaded manifest %v, saved %s (%v)", loaded, img.ManifestDigest, err)
	}
	// Hostile archives are refused.
	var evil bytes.Buffer
	tw := tar.NewWriter(&evil)
	tw.WriteHeader(&tar.Header{Name: "../escape", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	if err := Load(ctx, dst, &evil, t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("load of a traversing archive: %v", err)
	}
}
