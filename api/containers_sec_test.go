package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/container"
)

// secFake adds the rename/update/commit/archive endpoints to the fake.
type secFake struct {
	*fakeBackend
	renamed   [2]string
	updated   *container.UpdateConfig
	commit    CommitOptions
	extracted string
}

func (f *secFake) ContainerRename(ctx context.Context, name, newName string) error {
	if name == "ghost" {
		return errdefs.NotFoundf("No such container: %s", name)
	}
	f.renamed = [2]string{name, newName}
	return nil
}

func (f *secFake) ContainerUpdate(ctx context.Context, name string, cfg *container.UpdateConfig) (container.UpdateResponse, error) {
	f.updated = cfg
	return container.UpdateResponse{}, nil
}

func (f *secFake) ContainerCommit(ctx context.Context, name string, opts CommitOptions) (string, error) {
	f.commit = opts
	return "sha256:abc", nil
}

func (f *secFake) ContainerStatPath(ctx context.Context, name, path string) (*container.PathStat, error) {
	if path == "/missing" {
		return nil, errdefs.NotFoundf("Could not find the file %s in container %s", path, name)
	}
	return &container.PathStat{Name: "etc", Size: 4096, Mode: os.ModeDir | 0o755, Mtime: time.Unix(0, 0).UTC()}, nil
}

func (f *secFake) ContainerArchivePath(ctx context.Context, name, path string) (io.ReadCloser, *container.PathStat, error) {
	st, err := f.ContainerStatPath(ctx, name, path)
	if err != nil {
		return nil, nil, err
	}
	return io.NopCloser(strings.NewReader("TAR")), st, nil
}

func (f *secFake) ContainerExtractToDir(ctx context.Context, name, path string, copyUIDGID, noOverwrite bool, content io.Reader) error {
	b, _ := io.ReadAll(content)
	f.extracted = path + ":" + string(b)
	return nil
}

func TestContainerSecRoutes(t *testing.T) {
	fb := &secFake{fakeBackend: newFakeBackend()}
	srv := httptest.NewServer(New(fb, slog.New(slog.DiscardHandler)).Handler())
	defer srv.Close()
	do := func(method, path, ctype, body string) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
	}{
		{"rename", "POST", "/v1.41/containers/a/rename?name=b", "", "", 204},
		{"rename missing", "POST", "/containers/ghost/rename?name=b", "", "", 404},
		{"update", "POST", "/containers/a/update", "application/json", `{"Memory":67108864,"RestartPolicy":{"Name":"always"}}`, 200},
		{"update bad json", "POST", "/containers/a/update", "application/json", `{"Memory":"x"}`, 400},
		{"commit null body", "POST", "/commit?container=a", "application/json", `null`, 201},
		{"commit", "POST", "/commit?container=a&repo=r&tag=t&changes=ENV+A%3D1&changes=USER+u", "application/json", `{"Cmd":["x"]}`, 201},
		{"head", "HEAD", "/containers/a/archive?path=/etc", "", "", 200},
		{"head missing", "HEAD", "/containers/a/archive?path=/missing", "", "", 404},
		{"head no path", "HEAD", "/containers/a/archive", "", "", 400},
		{"get", "GET", "/containers/a/archive?path=/etc", "", "", 200},
		{"put", "PUT", "/containers/a/archive?path=/tmp&noOverwriteDirNonDir=true", "text/plain", "DATA", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(tc.method, tc.path, tc.ctype, tc.body)
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
		})
	}
	if fb.renamed != [2]string{"a", "b"} || fb.updated.Memory != 64<<20 || fb.updated.RestartPolicy.Name != "always" {
		t.Errorf("rename %v update %+v", fb.renamed, fb.updated)
	}
	if fb.commit.Repo != "r" || fb.commit.Tag != "t" || len(fb.commit.Changes) != 2 || !fb.commit.Pause {
		t.Errorf("commit options %+v", fb.commit)
	}
	if fb.extracted != "/tmp:DATA" {
		t.Errorf("extracted %q", fb.extracted)
	}
	resp := do("GET", "/containers/a/archive?path=/etc", "", "")
	defer resp.Body.Close()
	raw, _ := base64.StdEncoding.DecodeString(resp.Header.Get("X-Docker-Container-Path-Stat"))
	var st map[string]any
	json.Unmarshal(raw, &st)
	if st["name"] != "etc" || st["mode"] != float64(2147484141) || resp.Header.Get("Content-Type") != "application/x-tar" {
		t.Errorf("stat header %s, content type %q", raw, resp.Header.Get("Content-Type"))
	}
}
