package api

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/registry/storage"
	"github.com/opencontainers/go-digest"
)

type env struct {
	t     *testing.T
	srv   *httptest.Server
	store *storage.Store
	root  string
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	root := t.TempDir()
	st, err := storage.Open(root, nil, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(st, opts))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, store: st, root: root}
}

func (e *env) do(method, path string, body []byte, hdr ...string) *http.Response {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func expect(t *testing.T, resp *http.Response, status int, code string) []byte {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	if code != "" && !bytes.Contains(body, []byte(`"code":"`+code+`"`)) {
		t.Fatalf("%s %s: body %s, want code %s", resp.Request.Method, resp.Request.URL.Path, body, code)
	}
	return body
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func (e *env) pushBlob(repo string, b []byte) digest.Digest {
	d := digest.FromBytes(b)
	expect(e.t, e.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), b), http.StatusCreated, "")
	return d
}

func (e *env) pushImage(repo, tag string) (digest.Digest, []byte) {
	cfg := e.pushBlob(repo, []byte(`{"architecture":"amd64","os":"linux"}`))
	layer := randBytes(100)
	ld := e.pushBlob(repo, layer)
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":37},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":100}]}`,
		storage.MediaTypeOCIManifest, cfg, ld)
	expect(e.t, e.do("PUT", "/v2/"+repo+"/manifests/"+tag, []byte(m), "Content-Type", storage.MediaTypeOCIManifest), http.StatusCreated, "")
	return digest.FromString(m), []byte(m)
}

func TestBlobUploadFlows(t *testing.T) {
	e := newEnv(t, Options{EnableDelete: true})
	data := randBytes(3000)
	d := digest.FromBytes(data)

	// Chunked: POST, PATCH with Content-Range, a stale chunk, GET status, PUT.
	resp := e.do("POST", "/v2/a/b/blobs/uploads/", nil)
	expect(t, resp, http.StatusAccepted, "")
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/v2/a/b/blobs/uploads/") || strings.Contains(loc, "?") {
		t.Fatalf("location %q must carry the session in the path", loc)
	}
	resp = e.do("PATCH", loc, data[:1000], "Content-Range", "0-999", "Content-Type", "application/octet-stream")
	expect(t, resp, http.StatusAccepted, "")
	if got := resp.Header.Get("Range"); got != "0-999" {
		t.Fatalf("Range %q", got)
	}
	resp = e.do("PATCH", loc, data[:1000], "Content-Range", "0-999")
	expect(t, resp, http.StatusRequestedRangeNotSatisfiable, "")
	if resp.Header.Get("Location") == "" || resp.Header.Get("Range") != "0-999" {
		t.Fatalf("416 must say where the upload stands: %v", resp.Header)
	}
	resp = e.do("GET", loc, nil)
	expect(t, resp, http.StatusNoContent, "")
	if resp.Header.Get("Range") != "0-999" {
		t.Fatalf("status Range %q", resp.Header.Get("Range"))
	}
	expect(t, e.do("PATCH", loc, data[1000:]), http.StatusAccepted, "") // streamed
	resp = e.do("PUT", loc+"?digest="+d.String(), nil)
	expect(t, resp, http.StatusCreated, "")
	if resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("digest header %q", resp.Header.Get("Docker-Content-Digest"))
	}
	got := expect(t, e.do("GET", "/v2/a/b/blobs/"+d.String(), nil), http.StatusOK, "")
	if !bytes.Equal(got, data) {
		t.Fatal("blob content differs")
	}

	// Ranges.
	resp = e.do("GET", "/v2/a/b/blobs/"+d.String(), nil, "Range", "bytes=10-19")
	if b := expect(t, resp, http.StatusPartialContent, ""); !bytes.Equal(b, data[10:20]) || resp.Header.Get("Content-Range") != "bytes 10-19/3000" {
		t.Fatalf("range body/header wrong: %q", resp.Header.Get("Content-Range"))
	}
	expect(t, e.do("GET", "/v2/a/b/blobs/"+d.String(), nil, "Range", "bytes=5000-"), http.StatusRequestedRangeNotSatisfiable, "")

	// Mount from another repository, and anonymous mount.
	resp = e.do("POST", "/v2/c/blobs/uploads/?mount="+d.String()+"&from=a/b", nil)
	expect(t, resp, http.StatusCreated, "")
	expect(t, e.do("HEAD", "/v2/c/blobs/"+d.String(), nil), http.StatusOK, "")
	expect(t, e.do("POST", "/v2/d/blobs/uploads/?mount="+d.String(), nil), http.StatusCreated, "")
	// A mount of something unknown falls back to an upload session.
	expect(t, e.do("POST", "/v2/d/blobs/uploads/?mount="+digest.FromString("nope").String()+"&from=a/b", nil), http.StatusAccepted, "")

	// Delete unlinks from one repository only.
	expect(t, e.do("DELETE", "/v2/c/blobs/"+d.String(), nil), http.StatusAccepted, "")
	expect(t, e.do("HEAD", "/v2/c/blobs/"+d.String(), nil), http.StatusNotFound, "")
	expect(t, e.do("HEAD", "/v2/a/b/blobs/"+d.String(), nil), http.StatusOK, "")

	// Cancel.
	resp = e.do("POST", "/v2/a/b/blobs/uploads/", nil)
	loc = resp.Header.Get("Location")
	expect(t, e.do("DELETE", loc, nil), http.StatusNoContent, "")
	expect(t, e.do("GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
}

func TestBadInputNeverReachesDiskOr500(t *testing.T) {
	e := newEnv(t, Options{EnableDelete: true})
	data := []byte("hello")
	wrong := digest.FromString("something else")
	cases := []struct {
		name, method, path string
		body               []byte
		status             int
		code               string
	}{
		{"monolithic digest mismatch", "POST", "/v2/r/blobs/uploads/?digest=" + wrong.String(), data, 400, "DIGEST_INVALID"},
		{"malformed digest", "GET", "/v2/r/blobs/sha256:xyz", nil, 400, "DIGEST_INVALID"},
		{"unknown algorithm", "GET", "/v2/r/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", nil, 400, "DIGEST_INVALID"},
		{"dotdot name", "GET", "/v2/a/../../etc/manifests/latest", nil, 400, "NAME_INVALID"},
		{"encoded dotdot name", "GET", "/v2/a/%2e%2e/b/manifests/latest", nil, 400, "NAME_INVALID"},
		{"uppercase name", "GET", "/v2/Alpine/tags/list", nil, 400, "NAME_INVALID"},
		{"underscore component", "GET", "/v2/a/_manifests/tags/list", nil, 400, "NAME_INVALID"},
		{"bad upload id", "PATCH", "/v2/r/blobs/uploads/..%2e", data, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"missing manifest", "GET", "/v2/r/manifests/nope", nil, 404, "MANIFEST_UNKNOWN"},
		{"unknown repo tags", "GET", "/v2/nobody/tags/list", nil, 404, "NAME_UNKNOWN"},
		{"manifest not json", "PUT", "/v2/r/manifests/t", []byte("{"), 400, "MANIFEST_INVALID"},
		{"manifest with missing blobs", "PUT", "/v2/r/manifests/t", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x","digest":"` + wrong.String() + `","size":1},"layers":[]}`), 400, "MANIFEST_BLOB_UNKNOWN"},
		{"oversize manifest", "PUT", "/v2/r/manifests/t", bytes.Repeat([]byte(" "), storage.MaxManifestSize+1), 413, "SIZE_INVALID"},
		{"bad tag", "PUT", "/v2/r/manifests/-bad", []byte("{}"), 400, "MANIFEST_INVALID"},
		{"bad n", "GET", "/v2/_catalog?n=-1", nil, 400, ""},
		{"referrers bad digest", "GET", "/v2/r/referrers/sha256:1", nil, 400, "DIGEST_INVALID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expect(t, e.do(c.method, c.path, c.body), c.status, c.code)
		})
	}
	// The refused push left nothing: no blob, no temp file, no session.
	for _, dir := range []string{"blobs", "tmp", "uploads"} {
		var files []string
		_ = filepath.Walk(filepath.Join(e.root, dir), func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				files = append(files, p)
			}
			return nil
		})
		if len(files) > 0 {
			t.Errorf("%s holds leftovers: %v", dir, files)
		}
	}
	if _, err := os.Stat(filepath.Join(e.root, "etc")); err == nil {
		t.Fatal("a path trick reached the filesystem")
	}

	// A session whose final digest does not match is refused and removed.
	resp := e.do("POST", "/v2/r/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	expect(t, e.do("PATCH", loc, data), http.StatusAccepted, "")
	expect(t, e.do("PUT", loc+"?digest="+wrong.String(), nil), http.StatusBadRequest, "DIGEST_INVALID")
	expect(t, e.do("GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	ents, _ := os.ReadDir(filepath.Join(e.root, "uploads"))
	if len(ents) != 0 {
		t.Fatalf("refused upload left %d sessions", len(ents))
	}
}

func TestManifestsTagsReferrers(t *testing.T) {
	e := newEnv(t, Options{EnableDelete: true})
	md, body := e.pushImage("app", "v1")
	// Served whatever the Accept header says.
	resp := e.do("GET", "/v2/app/manifests/v1", nil, "Accept", "application/vnd.docker.distribution.manifest.v1+json")
	if got := expect(t, resp, http.StatusOK, ""); !bytes.Equal(got, body) || resp.Header.Get("Content-Type") != storage.MediaTypeOCIManifest || resp.Header.Get("Docker-Content-Digest") != md.String() {
		t.Fatalf("manifest GET wrong: %v", resp.Header)
	}
	for _, tag := range []string{"v3", "v2", "a", "latest"} {
		expect(t, e.do("PUT", "/v2/app/manifests/"+tag, body, "Content-Type", storage.MediaTypeOCIManifest), http.StatusCreated, "")
	}
	var tl struct{ Tags []string }
	resp = e.do("GET", "/v2/app/tags/list?n=2", nil)
	_ = json.Unmarshal(expect(t, resp, http.StatusOK, ""), &tl)
	if strings.Join(tl.Tags, ",") != "a,latest" || !strings.Contains(resp.Header.Get("Link"), "last=latest") {
		t.Fatalf("page 1: %v link %q", tl.Tags, resp.Header.Get("Link"))
	}
	_ = json.Unmarshal(expect(t, e.do("GET", "/v2/app/tags/list?n=10&last=latest", nil), http.StatusOK, ""), &tl)
	if strings.Join(tl.Tags, ",") != "v1,v2,v3" {
		t.Fatalf("page 2: %v", tl.Tags)
	}

	// An artifact referring to the image.
	empty := e.pushBlob("app", []byte("{}"))
	art := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":"application/x-sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[],"subject":{"mediaType":%q,"digest":%q,"size":%d}}`,
		storage.MediaTypeOCIManifest, empty, storage.MediaTypeOCIManifest, md, len(body))
	ad := digest.FromString(art)
	resp = e.do("PUT", "/v2/app/manifests/"+ad.String(), []byte(art), "Content-Type", storage.MediaTypeOCIManifest)
	expect(t, resp, http.StatusCreated, "")
	if resp.Header.Get("OCI-Subject") != md.String() {
		t.Fatalf("OCI-Subject %q", resp.Header.Get("OCI-Subject"))
	}
	var idx struct {
		Manifests []storage.Descriptor
	}
	_ = json.Unmarshal(expect(t, e.do("GET", "/v2/app/referrers/"+md.String(), nil), http.StatusOK, ""), &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != ad || idx.Manifests[0].ArtifactType != "application/x-sig" {
		t.Fatalf("referrers %+v", idx.Manifests)
	}
	resp = e.do("GET", "/v2/app/referrers/"+md.String()+"?artifactType=other", nil)
	_ = json.Unmarshal(expect(t, resp, http.StatusOK, ""), &idx)
	if len(idx.Manifests) != 0 || resp.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered referrers %+v %v", idx.Manifests, resp.Header)
	}

	// Delete by digest removes its tags too.
	expect(t, e.do("DELETE", "/v2/app/manifests/"+md.String(), nil), http.StatusAccepted, "")
	expect(t, e.do("GET", "/v2/app/manifests/v1", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")

	var cat struct{ Repositories []string }
	expect(t, e.do("PUT", "/v2/zzz/manifests/x", body, "Content-Type", storage.MediaTypeOCIManifest), http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
	e.pushImage("b/c", "x")
	resp = e.do("GET", "/v2/_catalog?n=1", nil)
	_ = json.Unmarshal(expect(t, resp, http.StatusOK, ""), &cat)
	if strings.Join(cat.Repositories, ",") != "app" || resp.Header.Get("Link") == "" {
		t.Fatalf("catalog %v link %q", cat.Repositories, resp.Header.Get("Link"))
	}
}

func TestModes(t *testing.T) {
	ro := newEnv(t, Options{ReadOnly: true})
	expect(t, ro.do("POST", "/v2/a/blobs/uploads/", nil), http.StatusMethodNotAllowed, "UNSUPPORTED")
	expect(t, ro.do("PUT", "/v2/a/manifests/x", []byte("{}")), http.StatusMethodNotAllowed, "UNSUPPORTED")
	expect(t, ro.do("GET", "/v2/", nil), http.StatusOK, "")

	nodel := newEnv(t, Options{})
	d, _ := nodel.pushImage("a", "x")
	expect(t, nodel.do("DELETE", "/v2/a/manifests/"+d.String(), nil), http.StatusMethodNotAllowed, "UNSUPPORTED")
	expect(t, nodel.do("GET", "/v2/a/manifests/x", nil), http.StatusOK, "")

	resp := nodel.do("GET", "/metrics", nil)
	m := string(expect(t, resp, http.StatusOK, ""))
	for _, want := range []string{`berth_registry_requests_total{method="PUT",route="manifest",code="201"} 1`, "berth_registry_storage_bytes ", "berth_registry_request_duration_seconds_bucket"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

// A client that vanishes mid-upload is a client error, and the session
// keeps only what arrived whole.
func TestAbortedUploadIsNotAServerError(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.do("POST", "/v2/r/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	expect(t, e.do("PATCH", loc, []byte("0123456789"), "Content-Range", "0-9"), http.StatusAccepted, "")

	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Range: 10-1009\r\nContent-Length: 1000\r\n\r\nonly a few bytes", loc)
	conn.(*net.TCPConn).CloseWrite()
	_, _ = io.ReadAll(conn)
	conn.Close()

	resp = e.do("GET", loc, nil)
	expect(t, resp, http.StatusNoContent, "")
	if got := resp.Header.Get("Range"); got != "0-9" {
		t.Fatalf("after an aborted chunk the upload holds %q, want 0-9", got)
	}
	m := string(expect(t, e.do("GET", "/metrics", nil), http.StatusOK, ""))
	if strings.Contains(m, `code="500"`) {
		t.Fatalf("aborted upload counted as a server error:\n%s", m)
	}
}
