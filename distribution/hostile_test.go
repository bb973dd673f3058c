package distribution

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth/image"
	"github.com/opencontainers/go-digest"
)

var blobPath = regexp.MustCompile(`/v2/.+/blobs/(sha256:[0-9a-f]{64})$`)
var manifestPath = regexp.MustCompile(`/v2/.+/manifests/([^/]+)$`)

// bigLayer is large enough that a pull reads it in many chunks.
func bigLayer(t testing.TB) []byte {
	var b strings.Builder
	for i := 0; i < 20000; i++ {
		b.WriteString(strconv.Itoa(i*7919) + " berth layer line\n")
	}
	return mkTar(t, tarEntry{name: "big", body: b.String()})
}

// pushTest pushes a two-layer image to a fresh registry behind wrap and returns the ref.
func pushTest(t *testing.T, wrap func(http.Handler) http.Handler, tars ...[]byte) (Ref, image.View) {
	t.Helper()
	host := newRegistry(t, anonymous, wrap)
	if len(tars) == 0 {
		tars = [][]byte{mkTar(t, tarEntry{name: "a", body: "a"}), bigLayer(t)}
	}
	src := testImage(t, hostArch(), true, tars...)
	ref := mustRef(t, host+"/bad/img:v1")
	if _, err := newClient(t).Push(context.Background(), src, ref, nil, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	return ref, src
}

// lastLayer is the digest of the top layer of v.
func lastLayer(v image.View) digest.Digest {
	m, _ := v.Manifest()
	return m.Layers[len(m.Layers)-1].Digest
}

// interceptor lets a test rewrite GET answers once armed (pushes go through untouched).
type interceptor struct {
	armed atomic.Bool
	fn    func(w http.ResponseWriter, r *http.Request, next http.Handler) bool
}

func (i *interceptor) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if i.armed.Load() && r.Method == http.MethodGet && i.fn(w, r, next) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

func record(next http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	return rec
}

func copyHeader(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
}

func TestPullRefusesLies(t *testing.T) {
	tests := []struct {
		name    string
		pinned  bool // pull by a digest the registry does not serve
		fn      func(layer digest.Digest) func(w http.ResponseWriter, r *http.Request, next http.Handler) bool
		wantErr string
	}{
		{"altered layer", false, func(layer digest.Digest) func(http.ResponseWriter, *http.Request, http.Handler) bool {
			return func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				m := blobPath.FindStringSubmatch(r.URL.Path)
				if m == nil || m[1] != layer.String() {
					return false
				}
				rec := record(next, r)
				b := rec.Body.Bytes()
				b[len(b)/2] ^= 0xff
				copyHeader(w, rec)
				w.WriteHeader(rec.Code)
				w.Write(b)
				return true
			}
		}, "digest mismatch|gzip: invalid checksum"},
		{"manifest digest header lies", false, func(digest.Digest) func(http.ResponseWriter, *http.Request, http.Handler) bool {
			return func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if !manifestPath.MatchString(r.URL.Path) {
					return false
				}
				rec := record(next, r)
				copyHeader(w, rec)
				w.Header().Set("Docker-Content-Digest", digest.FromString("other").String())
				w.WriteHeader(rec.Code)
				w.Write(rec.Body.Bytes())
				return true
			}
		}, "registry claims digest"},
		{"pinned digest served other content", true, func(digest.Digest) func(http.ResponseWriter, *http.Request, http.Handler) bool {
			return func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if !strings.Contains(r.URL.Path, "/manifests/sha256:") {
					return false
				}
				r2 := r.Clone(r.Context())
				r2.URL.Path = r.URL.Path[:strings.Index(r.URL.Path, "/manifests/")] + "/manifests/v1"
				rec := record(next, r2)
				copyHeader(w, rec)
				w.Header().Del("Docker-Content-Digest")
				w.WriteHeader(rec.Code)
				w.Write(rec.Body.Bytes())
				return true
			}
		}, "manifest verification failed"},
		{"truncated layer", false, func(layer digest.Digest) func(http.ResponseWriter, *http.Request, http.Handler) bool {
			return func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if m := blobPath.FindStringSubmatch(r.URL.Path); m == nil || m[1] != layer.String() {
					return false
				}
				rec := record(next, r)
				copyHeader(w, rec)
				w.WriteHeader(rec.Code)
				b := rec.Body.Bytes()
				w.Write(b[:len(b)/2]) // short of the declared Content-Length: the connection breaks
				return true
			}
		}, "truncated"},
		{"manifest understates a layer", false, func(layer digest.Digest) func(http.ResponseWriter, *http.Request, http.Handler) bool {
			return func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if !manifestPath.MatchString(r.URL.Path) {
					return false
				}
				rec := record(next, r)
				var m map[string]any
				json.Unmarshal(rec.Body.Bytes(), &m)
				for _, l := range m["layers"].([]any) {
					l.(map[string]any)["size"] = l.(map[string]any)["size"].(float64) - 1
				}
				b, _ := json.Marshal(m)
				copyHeader(w, rec)
				w.Header().Del("Docker-Content-Digest")
				w.Header().Set("Content-Length", strconv.Itoa(len(b)))
				w.WriteHeader(rec.Code)
				w.Write(b)
				return true
			}
		}, "manifest says"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ic := &interceptor{}
			ref, src := pushTest(t, ic.wrap)
			ic.fn = tt.fn(lastLayer(src))
			ic.armed.Store(true)
			store, root := newStore(t)
			before := storeFiles(t, root)
			if tt.pinned {
				ref = mustRef(t, ref.Name()+"@"+digest.FromString("wanted").String())
			}
			_, err := newClient(t).Pull(context.Background(), store, ref, PullOptions{})
			if err == nil || !regexp.MustCompile(tt.wantErr).MatchString(err.Error()) {
				t.Fatalf("err = %v, want one matching %q", err, tt.wantErr)
			}
			if imgs, _ := store.List(context.Background()); len(imgs) != 0 {
				t.Fatalf("a refused pull left images: %v", imgs)
			}
			if after := storeFiles(t, root); strings.Join(after, ",") != strings.Join(before, ",") {
				t.Fatalf("a refused pull left files:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func TestPullConfigDiffIDMismatch(t *testing.T) {
	good := testImage(t, hostArch(), true, mkTar(t, tarEntry{name: "x", body: "x"}))
	raw, _ := good.RawConfigFile()
	var cfg map[string]any
	json.Unmarshal(raw, &cfg)
	cfg["rootfs"].(map[string]any)["diff_ids"] = []string{digest.FromString("not the layer").String()}
	bad, _ := json.Marshal(cfg)
	layers, _ := good.Layers()
	v, err := image.NewView(bad, layers)
	if err != nil {
		t.Fatal(err)
	}
	host := newRegistry(t, anonymous, nil)
	ref := mustRef(t, host+"/bad/diffid:1")
	if _, err := newClient(t).Push(context.Background(), v, ref, nil, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	store, root := newStore(t)
	_, err = newClient(t).Pull(context.Background(), store, ref, PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "diff ID mismatch") {
		t.Fatalf("err = %v", err)
	}
	if files := storeFiles(t, root); len(files) != 0 {
		t.Fatalf("left files: %v", files)
	}
}

func TestPullResumesAfterBrokenConnection(t *testing.T) {
	var cuts atomic.Int32
	ic := &interceptor{}
	ref, src := pushTest(t, ic.wrap)
	layer := lastLayer(src)
	ic.fn = func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if m := blobPath.FindStringSubmatch(r.URL.Path); m == nil || m[1] != layer.String() || r.Header.Get("Range") != "" || cuts.Add(1) > 1 {
			return false
		}
		rec := record(next, r)
		copyHeader(w, rec)
		w.WriteHeader(rec.Code)
		b := rec.Body.Bytes()
		w.Write(b[:len(b)/3])
		return true
	}
	ic.armed.Store(true)
	store, _ := newStore(t)
	res, err := newClient(t).Pull(context.Background(), store, ref, PullOptions{})
	if err != nil {
		t.Fatalf("pull did not resume: %v", err)
	}
	id, _ := src.ConfigName()
	if res.Image.ID != id || cuts.Load() < 1 {
		t.Fatalf("id %s cuts %d", res.Image.ID, cuts.Load())
	}
}

func TestPullCancelledLeavesNothingAndResumes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ic := &interceptor{}
	ref, src := pushTest(t, ic.wrap)
	layer := lastLayer(src)
	ic.fn = func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if m := blobPath.FindStringSubmatch(r.URL.Path); m == nil || m[1] != layer.String() {
			return false
		}
		rec := record(next, r)
		copyHeader(w, rec)
		w.WriteHeader(rec.Code)
		b := rec.Body.Bytes()
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		cancel() // the client goes away mid-layer
		<-r.Context().Done()
		return true
	}
	ic.armed.Store(true)
	store, root := newStore(t)
	if _, err := newClient(t).Pull(ctx, store, ref, PullOptions{}); err == nil {
		t.Fatal("cancelled pull succeeded")
	}
	if imgs, _ := store.List(context.Background()); len(imgs) != 0 {
		t.Fatalf("cancelled pull left images")
	}
	if files := storeFiles(t, root); len(files) != 0 {
		t.Fatalf("cancelled pull left files: %v", files)
	}
	ic.armed.Store(false)
	res, err := newClient(t).Pull(context.Background(), store, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := src.ConfigName()
	if res.Image.ID != id {
		t.Fatalf("id %s, want %s", res.Image.ID, id)
	}
}

func TestPullHostileLayers(t *testing.T) {
	outside := t.TempDir()
	tests := []struct {
		name    string
		tar     []byte
		wantErr string // "" when the layer is accepted but confined
	}{
		{"path traversal", mkTar(t, tarEntry{name: "../../../" + outside + "/pwned", body: "x"}), "tar entry"},
		{"symlink escape", mkTar(t, tarEntry{name: "esc", typ: '2', link: outside}, tarEntry{name: "esc/pwned", body: "x"}), ""},
		{"hardlink escape", mkTar(t, tarEntry{name: "h", typ: '1', link: outside + "/sentinel"}), "tar entry"},
		{"device node", mkTar(t, tarEntry{name: "null", typ: '3', mode: 0o666}), ""},
		{"gzip bomb", nil, "decompression bomb"},
	}
	os.WriteFile(filepath.Join(outside, "sentinel"), []byte("keep"), 0o644)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := tt.tar
			if tb == nil {
				// 100 MB of zeros (about 100 KB of gzip) expands past 10x + 64 MiB.
				var buf bytes.Buffer
				zero := make([]byte, 1<<20)
				for i := 0; i < 100; i++ {
					buf.Write(zero)
				}
				tb = mkTar(t, tarEntry{name: "bomb", body: buf.String()})
			}
			ref, _ := pushTest(t, nil, tb)
			store, root := newStore(t)
			_, err := newClient(t).Pull(context.Background(), store, ref, PullOptions{MaxExpansion: 10})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if files := storeFiles(t, root); len(files) != 0 {
					t.Fatalf("refused layer left files: %v", files)
				}
			} else if err != nil {
				t.Fatalf("confined layer refused: %v", err)
			}
			if _, err := os.Stat(filepath.Join(outside, "pwned")); err == nil {
				t.Fatal("a layer wrote outside its snapshot")
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "sentinel")); string(b) != "keep" {
				t.Fatal("a layer changed a file outside its snapshot")
			}
		})
	}
}

var _ = io.Discard
