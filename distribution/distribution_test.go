package distribution

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	regapi "github.com/berth-dev/berth/registry/api"
	"github.com/berth-dev/berth/registry/auth"
	"github.com/berth-dev/berth/registry/storage"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"
)

// rootfsTar is a small root filesystem; salt makes its layer unique.
func rootfsTar(t *testing.T, salt string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range []struct{ name, body string }{{"etc/hostname", "x\n"}, {"salt", salt}, {"bin/tool", strings.Repeat("binary", 50000)}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.body))
	}
	tw.Close()
	return b.Bytes()
}

func openStore(t *testing.T) *image.Store {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the image store unpacks layers as root (overlay whiteouts, owners)")
	}
	s, err := image.Open(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func registryServer(t *testing.T, opts regapi.Options) *httptest.Server {
	t.Helper()
	st, err := storage.Open(t.TempDir(), nil, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(regapi.New(st, opts))
	t.Cleanup(srv.Close)
	return srv
}

func named(t *testing.T, s string) reference.Named {
	t.Helper()
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// collect records progress messages.
type collect struct {
	mu   sync.Mutex
	msgs []jsonstream.Message
}

func (c *collect) progress(m jsonstream.Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}
func (c *collect) has(status string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.msgs {
		if strings.HasPrefix(m.Status, status) {
			return true
		}
	}
	return false
}

// pushPull pushes a fresh image with client cl and pulls it into another
// store with client pl; it checks that the image and its manifest digest
// survive the round trip.
func pushPull(t *testing.T, host string, cl, pl *Client) {
	t.Helper()
	ctx := context.Background()
	src := openStore(t)
	ref := host + "/team/app:v1"
	img, err := src.Import(ctx, bytes.NewReader(rootfsTar(t, t.Name())), image.ImportOptions{Ref: ref, Changes: []string{"CMD [\"/bin/tool\"]"}})
	if err != nil {
		t.Fatal(err)
	}
	var pushed collect
	res, err := Push(ctx, src, cl, named(t, ref).(reference.NamedTagged), PushOptions{Progress: pushed.progress})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if !pushed.has("Pushed") {
		t.Fatalf("push messages %+v", pushed.msgs)
	}
	// Pushing again uploads nothing.
	var again collect
	if _, err := Push(ctx, src, cl, named(t, ref).(reference.NamedTagged), PushOptions{Progress: again.progress}); err != nil || !again.has("Layer already exists") {
		t.Fatalf("second push: %v %+v", err, again.msgs)
	}

	dst := openStore(t)
	var pulled collect
	got, err := Pull(ctx, dst, pl, named(t, ref), PullOptions{Progress: pulled.progress})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if got.ID != img.ID || got.ManifestDigest != res.Digest {
		t.Fatalf("pulled image %s (manifest %s), pushed %s (manifest %s)", got.ID, got.ManifestDigest, img.ID, res.Digest)
	}
	if len(got.RepoDigests) != 1 || !strings.HasSuffix(got.RepoDigests[0], "@"+res.Digest.String()) {
		t.Fatalf("repo digests %v", got.RepoDigests)
	}
	for _, s := range []string{"Pulling from", "Pulling fs layer", "Downloading", "Download complete", "Pull complete", "Digest: sha256:", "Status: Downloaded newer image"} {
		if !pulled.has(s) {
			t.Errorf("no %q in the pull's progress: %+v", s, pulled.msgs)
		}
	}
	// By digest too, and up to date.
	var byDigest collect
	if _, err := Pull(ctx, dst, pl, named(t, host+"/team/app@"+res.Digest.String()), PullOptions{Progress: byDigest.progress}); err != nil {
		t.Fatalf("pull by digest: %v", err)
	}
	if !byDigest.has("Already exists") {
		t.Errorf("pull of a present image fetched its layer again: %+v", byDigest.msgs)
	}
}

func TestPushPullAnonymous(t *testing.T) {
	srv := registryServer(t, regapi.Options{})
	host := strings.TrimPrefix(srv.URL, "http://")
	pushPull(t, host, NewClient(Options{}, registry.AuthConfig{}), NewClient(Options{}, registry.AuthConfig{}))
}

func htpasswd(t *testing.T) *auth.Htpasswd {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users, err := auth.ParseHtpasswd([]byte("alice:" + string(h) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return users
}

func TestPushPullBasicAuth(t *testing.T) {
	srv := registryServer(t, regapi.Options{Authorizer: &auth.Basic{Users: htpasswd(t)}})
	host := strings.TrimPrefix(srv.URL, "http://")
	alice := registry.AuthConfig{Username: "alice", Password: "secret"}
	pushPull(t, host, NewClient(Options{}, alice), NewClient(Options{}, alice))
	// Without credentials, or with wrong ones, nothing is pulled.
	for _, ac := range []registry.AuthConfig{{}, {Username: "alice", Password: "nope"}} {
		_, err := Pull(context.Background(), openStore(t), NewClient(Options{}, ac), named(t, host+"/team/app:v1"), PullOptions{})
		if err == nil {
			t.Errorf("pull with %q/%q succeeded", ac.Username, ac.Password)
		}
	}
	if err := NewClient(Options{}, alice).Ping(context.Background(), host); err != nil {
		t.Errorf("login with good credentials: %v", err)
	}
	if err := NewClient(Options{}, registry.AuthConfig{Username: "alice", Password: "x"}).Ping(context.Background(), host); !errdefs.IsUnauthorized(err) {
		t.Errorf("login with a bad password: %v, want unauthorized", err)
	}
}

func TestPushPullTokenAuth(t *testing.T) {
	tk := &auth.Token{Path: "/token", Service: "reg", Key: []byte(strings.Repeat("k", 32)), Expiry: time.Minute, Users: htpasswd(t)}
	srv := registryServer(t, regapi.Options{Authorizer: tk, TokenHandler: tk, TokenPath: "/token"})
	host := strings.TrimPrefix(srv.URL, "http://")
	alice := registry.AuthConfig{Username: "alice", Password: "secret"}
	pushPull(t, host, NewClient(Options{}, alice), NewClient(Options{}, alice))
	_, err := Pull(context.Background(), openStore(t), NewClient(Options{}, registry.AuthConfig{}), named(t, host+"/team/app:v1"), PullOptions{})
	if !errdefs.IsUnauthorized(err) {
		t.Errorf("anonymous pull from a token registry: %v, want unauthorized", err)
	}
}

// fakeRegistry serves one image whose parts a test may corrupt.
type fakeRegistry struct {
	manifest, config, layer []byte
	layerDigest             digest.Digest
	truncate                bool
}

func newFake(t *testing.T, lie bool) *fakeRegistry {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(rootfsTar(t, "fake"))
	zw.Close()
	diffID := digest.FromBytes(rootfsTar(t, "fake"))
	f := &fakeRegistry{layer: gz.Bytes(), layerDigest: digest.FromBytes(gz.Bytes())}
	f.config, _ = json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID.String()}}})
	ld := f.layerDigest
	if lie {
		ld = digest.FromString("something else")
	}
	f.manifest, _ = json.Marshal(ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(f.config), Size: int64(len(f.config))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: ld, Size: int64(len(f.layer))}}})
	return f
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.Contains(r.URL.Path, "/manifests/"):
		w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
		w.Write(f.manifest)
	case strings.HasSuffix(r.URL.Path, digest.FromBytes(f.config).String()):
		w.Write(f.config)
	case strings.Contains(r.URL.Path, "/blobs/"):
		body := f.layer
		if f.truncate {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Write(body[:len(body)/2])
			return
		}
		w.Write(body)
	default:
		http.NotFound(w, r)
	}
}

// A manifest whose layer digest lies, or a blob cut short, is refused and
// leaves nothing in the store.
func TestPullRefusesBadContent(t *testing.T) {
	for _, tc := range []struct {
		name          string
		lie, truncate bool
	}{{"digest lies", true, false}, {"truncated blob", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.lie)
			f.truncate = tc.truncate
			srv := httptest.NewServer(f)
			defer srv.Close()
			store := openStore(t)
			_, err := Pull(context.Background(), store, NewClient(Options{}, registry.AuthConfig{}), named(t, strings.TrimPrefix(srv.URL, "http://")+"/x:1"), PullOptions{})
			if err == nil {
				t.Fatal("the pull succeeded")
			}
			if imgs, _ := store.List(context.Background()); len(imgs) != 0 {
				t.Fatalf("a failed pull left images: %v", imgs)
			}
		})
	}
}

func TestSelectPlatform(t *testing.T) {
	idx, _ := json.Marshal(ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
		{Digest: digest.FromString("arm"), Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{Digest: digest.FromString("amd"), Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
	}})
	if d, err := selectPlatform(idx, ocispec.Platform{OS: "linux", Architecture: "amd64"}); err != nil || d != digest.FromString("amd") {
		t.Errorf("amd64: %s %v", d, err)
	}
	if d, err := selectPlatform(idx, ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}); err != nil || d != digest.FromString("arm") {
		t.Errorf("arm64: %s %v", d, err)
	}
	if _, err := selectPlatform(idx, ocispec.Platform{OS: "linux", Architecture: "s390x"}); !errdefs.IsNotFound(err) {
		t.Errorf("s390x: %v, want not found", err)
	}
}

func TestParseChallenge(t *testing.T) {
	s, p := parseChallenge(`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"`)
	if s != "Bearer" || p["realm"] != "https://auth.example/token" || p["service"] != "registry.example" || p["scope"] != "repository:a/b:pull,push" {
		t.Errorf("got %q %v", s, p)
	}
	if s, p := parseChallenge(`Basic realm="x"`); s != "Basic" || p["realm"] != "x" {
		t.Errorf("basic: %q %v", s, p)
	}
}

func TestDecodeAuthHeader(t *testing.T) {
	raw, _ := json.Marshal(registry.AuthConfig{Username: "u", Password: "p:w"})
	for _, h := range []string{base64.URLEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw)} {
		ac, err := DecodeAuthHeader(h)
		if err != nil || ac.Username != "u" || ac.Password != "p:w" {
			t.Errorf("%q: %+v %v", h, ac, err)
		}
	}
	if _, err := DecodeAuthHeader("!!!"); !errdefs.IsInvalidParameter(err) {
		t.Errorf("garbage: %v", err)
	}
}

func TestInsecure(t *testing.T) {
	c := NewClient(Options{Insecure: []string{"reg.lan:5000", "10.0.0.0/8"}}, registry.AuthConfig{})
	for host, want := range map[string]bool{"localhost:5000": true, "127.0.0.1:80": true, "[::1]:5000": true,
		"reg.lan:5000": true, "10.1.2.3:5000": true, "example.com": false, "reg.lan:6000": false} {
		if got := c.insecure(host); got != want {
			t.Errorf("insecure(%q) = %v, want %v", host, got, want)
		}
	}
}

// FuzzManifest feeds registry answers to the manifest decoding.
func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","platform":{"os":"linux","architecture":"amd64"}}]}`))
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"sha256:00"},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"x","size":-1}]}`))
	f.Add([]byte(`{"schemaVersion":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		mt := sniffMediaType(data)
		if isIndex("", data) {
			selectPlatform(data, hostPlatform())
			return
		}
		_ = mt
		var m ocispec.Manifest
		if json.Unmarshal(data, &m) == nil {
			if err := checkManifest(&m); err == nil {
				for _, l := range m.Layers {
					if l.Digest.Validate() != nil || l.Size < 0 {
						t.Fatalf("accepted layer %+v", l)
					}
				}
			}
		}
	})
}

// A layer stored uncompressed is compressed once per registry: the gzip
// form is remembered, so pushing again checks the registry instead of
// compressing again; a registry without it gets it compressed anew.
func TestPushReusesCompressedLayer(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	hostA := strings.TrimPrefix(registryServer(t, regapi.Options{}).URL, "http://")
	hostB := strings.TrimPrefix(registryServer(t, regapi.Options{}).URL, "http://")
	img, err := store.Import(ctx, bytes.NewReader(rootfsTar(t, t.Name())), image.ImportOptions{Ref: hostA + "/c/app:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Tag(ctx, img.ID, hostB+"/c/app:1"); err != nil {
		t.Fatal(err)
	}
	c := NewClient(Options{}, registry.AuthConfig{})
	first, err := Push(ctx, store, c, named(t, hostA+"/c/app:1").(reference.NamedTagged), PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	desc, ok := store.CompressedLayer(ctx, img.Config.RootFS.DiffIDs[0])
	if !ok || desc.MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Fatalf("no compressed form recorded: %+v %v", desc, ok)
	}
	var again collect
	second, err := Push(ctx, store, c, named(t, hostA+"/c/app:1").(reference.NamedTagged), PushOptions{Progress: again.progress})
	if err != nil || second.Digest != first.Digest || !again.has("Layer already exists") {
		t.Fatalf("second push: %v, digest %s vs %s, %+v", err, second.Digest, first.Digest, again.msgs)
	}
	// Registry B has nothing: the layer is compressed and uploaded again.
	var toB collect
	third, err := Push(ctx, store, c, named(t, hostB+"/c/app:1").(reference.NamedTagged), PushOptions{Progress: toB.progress})
	if err != nil || !toB.has("Pushed") {
		t.Fatalf("push to a second registry: %v %+v", err, toB.msgs)
	}
	got, err := Pull(ctx, openStore(t), c, named(t, hostB+"/c/app:1"), PullOptions{})
	if err != nil || got.ID != img.ID || got.ManifestDigest != third.Digest {
		t.Fatalf("pull back from B: %v", err)
	}
}
