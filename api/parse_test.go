package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/container"
)

func TestParseBool(t *testing.T) {
	for _, v := range []string{"1", "true", "True", "TRUE", "yes", "on", "anything"} {
		if !parseBool(v) {
			t.Errorf("parseBool(%q) = false", v)
		}
	}
	for _, v := range []string{"", "0", "false", "False", "no", "NO", "none", " false "} {
		if parseBool(v) {
			t.Errorf("parseBool(%q) = true", v)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"1795365587", time.Unix(1795365587, 0), false},
		{"1795365587.393818265", time.Unix(1795365587, 393818265), false},
		{"1795365587.5", time.Unix(1795365587, 500000000), false},
		{"0.000000001", time.Unix(0, 1), false},
		{"-1.5", time.Unix(-1, -500000000), false},
		{"abc", time.Time{}, true},
		{"1.", time.Time{}, true},
		{".5", time.Time{}, true},
		{"1.1234567890", time.Time{}, true},
		{"1.-5", time.Time{}, true},
		{"+1", time.Time{}, true},
		{"2026-11-22T14:00:00Z", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseTimestamp(tt.in)
		if tt.bad {
			if !errdefs.IsInvalidParameter(err) {
				t.Errorf("parseTimestamp(%q) err = %v, want invalid parameter", tt.in, err)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseTimestamp(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.41", "1.50", -1}, {"1.9", "1.24", -1}, {"1.50", "1.50", 0}, {"1.5", "1.50", -1},
		{"2.0", "1.99", 1}, {"1.50.0", "1.50", 0}, {"1.50.1", "1.50", 1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSplitImagePath(t *testing.T) {
	tests := []struct{ path, name, action string }{
		{"/images/busybox/json", "busybox", "json"},
		{"/images/busybox:local/tag", "busybox:local", "tag"},
		{"/images/127.0.0.1:5099/rsx/busybox:1/json", "127.0.0.1:5099/rsx/busybox:1", "json"},
		{"/images/a/b@sha256:abc/history", "a/b@sha256:abc", "history"},
		{"/images/busybox", "", ""},
		{"/images//json", "", ""},
		{"/images/busybox/", "", ""},
	}
	for _, tt := range tests {
		name, action, ok := splitImagePath(tt.path)
		if ok != (tt.name != "") || name != tt.name || action != tt.action {
			t.Errorf("splitImagePath(%q) = %q %q %v", tt.path, name, action, ok)
		}
	}
}

func TestSplitRepoTag(t *testing.T) {
	tests := []struct{ repo, tag, wantRepo, wantTag string }{
		{"busybox", "", "busybox", ""},
		{"busybox:local", "", "busybox", "local"},
		{"busybox", "1", "busybox", "1"},
		{"127.0.0.1:5000/a/b", "", "127.0.0.1:5000/a/b", ""},
		{"127.0.0.1:5000/a/b:v2", "", "127.0.0.1:5000/a/b", "v2"},
		{"a/b@sha256:abc", "", "a/b@sha256:abc", ""},
	}
	for _, tt := range tests {
		r, tg := splitRepoTag(tt.repo, tt.tag)
		if r != tt.wantRepo || tg != tt.wantTag {
			t.Errorf("splitRepoTag(%q, %q) = %q %q", tt.repo, tt.tag, r, tg)
		}
	}
}

func TestDecodeCapturedCreateBodies(t *testing.T) {
	// Bodies sent by docker CLI 28, docker-compose 1.29 and testcontainers-go:
	// all must decode strictly (no field berth would refuse).
	files, _ := filepath.Glob("/work/shared/reference/docker-cli-traffic/*.txt")
	if len(files) == 0 {
		t.Skip("captures in /work/shared/reference are absent")
	}
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i, l := range lines {
			if !strings.Contains(l, "/containers/create") || !strings.HasPrefix(l, "POST") {
				continue
			}
			for j := i + 1; j < len(lines) && j < i+20; j++ {
				if body := lines[j]; strings.HasPrefix(body, "{") {
					// socat may glue its next marker to the body's line.
					for _, marker := range []string{"< 20", "> 20"} {
						if k := strings.Index(body, marker); k > 0 {
							body = body[:k]
						}
					}
					var req container.CreateRequest
					if err := decodeJSON([]byte(body), &req); err != nil {
						t.Errorf("%s: %v", filepath.Base(f), err)
					}
					n++
					break
				}
			}
		}
	}
	if n < 5 {
		t.Errorf("found only %d create bodies in the captures", n)
	}
}

func TestDecodeLegacyFieldsAccepted(t *testing.T) {
	var req container.CreateRequest
	if err := decodeJSON([]byte(`{"Image":"busybox","MacAddress":"02:42:ac:11:00:02","HostConfig":{"KernelMemory":0}}`), &req); err != nil {
		t.Errorf("legacy fields refused: %v", err)
	}
	if req.Image != "busybox" {
		t.Errorf("image %q", req.Image)
	}
}

// createSeeds are request bodies as real clients send them.
var createSeeds = []string{
	`{"Hostname":"","User":"","AttachStdout":true,"AttachStderr":true,"Tty":false,"Env":null,"Cmd":["echo","hi"],"Image":"busybox:local","Volumes":{},"Labels":{},"HostConfig":{"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"ConsoleSize":[0,0],"Memory":0,"NanoCpus":0,"PidsLimit":0},"NetworkingConfig":{"EndpointsConfig":{"default":{}}}}`,
	`{"Image":"busybox","ExposedPorts":{"80/tcp":{}},"HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]}}}`,
	`{"Image":"x","Cmd":7}`,
	`{"Image":"x"} {}`,
	`{}`,
	`null`,
	`[]`,
}

func FuzzDecodeCreateRequest(f *testing.F) {
	for _, s := range createSeeds {
		f.Add([]byte(s))
	}
	fb := newFakeBackend()
	srv := New(fb, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req container.CreateRequest
		err := decodeJSON(body, &req)
		if err != nil && !errdefs.IsInvalidParameter(err) {
			t.Fatalf("decode error not classified as 400: %v", err)
		}
		// Through the handler: a client's body never causes a 500.
		r := httptest.NewRequest("POST", "/v1.50/containers/create?name=fz", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body.String())
		}
		if w.Code >= 400 && w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("error without JSON content type: %q", w.Header().Get("Content-Type"))
		}
		fb.ContainerRemove(t.Context(), "fz", true, false)
	})
}

func FuzzQueryParsing(f *testing.F) {
	f.Add(`{"label":{"a=b":true}}`, "1795365587.393818265", "True", "1.41")
	f.Add(`{"label":["a=b"],"status":["exited"]}`, "", "0", "1.50")
	f.Add(`{"x":{"y":false}}`, "-5", "no", "1.2.3")
	f.Add(`{bad`, "1.", "", "")
	fb := newFakeBackend()
	fb.addContainer("c", false)
	srv := New(fb, nil)
	f.Fuzz(func(t *testing.T, filterJSON, ts, boolStr, version string) {
		tm, err := parseTimestamp(ts)
		if err != nil && !errdefs.IsInvalidParameter(err) {
			t.Fatalf("timestamp error not a 400: %v", err)
		}
		if err == nil && ts != "" && tm.IsZero() && ts != "0" {
			// "0" and "-0" style inputs may legitimately be the epoch, never the zero time.
			t.Fatalf("parseTimestamp(%q) gave the zero time", ts)
		}
		_ = parseBool(boolStr)
		if c := compareVersions(version, version); c != 0 {
			t.Fatalf("compareVersions(%q, itself) = %d", version, c)
		}
		q := url.Values{"filters": {filterJSON}, "all": {boolStr}, "since": {ts}, "until": {ts}, "limit": {boolStr}}
		for _, path := range []string{"/containers/json", "/images/json", "/events", "/containers/prune"} {
			method := "GET"
			if path == "/containers/prune" {
				method = "POST"
			}
			pq := q
			if path == "/events" {
				// An until in the past keeps the event stream finite.
				pq = url.Values{"filters": {filterJSON}, "since": {ts}, "until": {"1"}}
			}
			r := httptest.NewRequest(method, "/v1.41"+path+"?"+pq.Encode(), nil)
			w := httptest.NewRecorder()
			srv.Handler().ServeHTTP(w, r)
			if w.Code >= 500 {
				t.Fatalf("%s: status %d: %s", path, w.Code, w.Body.String())
			}
		}
		r := httptest.NewRequest("GET", "/_ping", nil)
		r.URL.Path = "/v" + version + "/_ping"
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, r)
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest && w.Code != http.StatusNotFound {
			t.Fatalf("ping with version %q: status %d", version, w.Code)
		}
	})
}
