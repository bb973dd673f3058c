package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/moby/moby/api/types/volume"
)

// fakeVolumes adds the volume backend to the route tests' fake.
type fakeVolumes struct {
	*fakeBackend
	vols       map[string]*volume.Volume
	inUse      map[string]bool
	pruneWith  filters.Args
	listFilter filters.Args
}

func (f *fakeVolumes) VolumeCreate(ctx context.Context, req volume.CreateRequest) (*volume.Volume, error) {
	if req.Name == "bad/" {
		return nil, errdefs.InvalidParameterf("%q includes invalid characters", req.Name)
	}
	v := &volume.Volume{Name: req.Name, Driver: "local", Labels: req.Labels, Options: req.DriverOpts, Scope: "local"}
	f.vols[req.Name] = v
	return v, nil
}

func (f *fakeVolumes) Volumes(ctx context.Context, ef filters.Args) ([]*volume.Volume, error) {
	f.listFilter = ef
	var out []*volume.Volume
	for _, v := range f.vols {
		out = append(out, v)
	}
	return out, nil
}

func (f *fakeVolumes) VolumeInspect(ctx context.Context, name string) (*volume.Volume, error) {
	if v, ok := f.vols[name]; ok {
		return v, nil
	}
	return nil, errdefs.NotFoundf("get %s: no such volume", name)
}

func (f *fakeVolumes) VolumeRemove(ctx context.Context, name string, force bool) error {
	if f.inUse[name] {
		return errdefs.Conflictf("remove %s: volume is in use - [abc]", name)
	}
	if _, ok := f.vols[name]; !ok && !force {
		return errdefs.NotFoundf("get %s: no such volume", name)
	}
	delete(f.vols, name)
	return nil
}

func (f *fakeVolumes) VolumesPrune(ctx context.Context, ef filters.Args) (*volume.PruneReport, error) {
	f.pruneWith = ef
	return &volume.PruneReport{VolumesDeleted: []string{"x"}, SpaceReclaimed: 3}, nil
}

func TestVolumeRoutes(t *testing.T) {
	fv := &fakeVolumes{fakeBackend: newFakeBackend(), vols: map[string]*volume.Volume{}, inUse: map[string]bool{"busy": true}}
	srv := New(fv, slog.New(slog.DiscardHandler))
	do := func(method, path, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	cases := []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"GET", "/v1.41/volumes", "", 200, `{"Volumes":[],"Warnings":null}`},
		{"POST", "/v1.41/volumes/create", `{"Driver":"local","Name":"spyvol"}`, 201, `"Name":"spyvol"`},
		{"POST", "/volumes/create", `{"Name":"bad/"}`, 400, "invalid characters"},
		{"POST", "/volumes/create", `{"Name":`, 400, ""},
		{"GET", "/volumes/spyvol", "", 200, `"Scope":"local"`},
		{"GET", "/volumes/nope", "", 404, `{"message":"get nope: no such volume"}`},
		{"DELETE", "/volumes/busy", "", 409, "volume is in use"},
		{"DELETE", "/volumes/nope", "", 404, ""},
		{"DELETE", "/volumes/nope?force=1", "", 204, ""},
		{"DELETE", "/v1.41/volumes/spyvol", "", 204, ""},
		{"POST", "/volumes/prune", "", 200, `"VolumesDeleted":["x"]`},
		{"GET", `/volumes?filters={"dangling":["true"]}`, "", 200, ""},
	}
	for _, tc := range cases {
		code, body := do(tc.method, tc.path, tc.body)
		if code != tc.status || !strings.Contains(body, tc.contains) {
			t.Errorf("%s %s = %d %s, want %d containing %q", tc.method, tc.path, code, body, tc.status, tc.contains)
		}
	}
	if !fv.listFilter.ExactMatch("dangling", "true") || !fv.listFilter.Has("dangling") {
		t.Errorf("list filter not passed: %v", fv.listFilter)
	}
	// Prune removes named volumes too for clients older than API 1.42.
	do("POST", "/v1.41/volumes/prune", "")
	if !fv.pruneWith.ExactMatch("all", "true") || !fv.pruneWith.Has("all") {
		t.Errorf("API 1.41 prune filters = %v, want all=true", fv.pruneWith)
	}
	do("POST", "/v1.45/volumes/prune", "")
	if fv.pruneWith.Has("all") {
		t.Errorf("API 1.45 prune filters = %v, want no all", fv.pruneWith)
	}
	var rep volume.PruneReport
	_, body := do("POST", "/volumes/prune", "")
	if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.SpaceReclaimed != 3 {
		t.Errorf("prune report %s: %v", body, err)
	}
}
