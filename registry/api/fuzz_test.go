package api

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/registry/storage"
)

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=500-", "bytes=-100", "bytes=500-0", "bytes=1-2,3-4", "bytes=-0", "bytes= 1 - 2", "items=0-1", "bytes=99999999999999999999-"} {
		f.Add(s, int64(2048))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 { // MinInt64
			return
		}
		start, n, ok, err := parseRange(h, size)
		if !ok {
			return
		}
		if err != nil || start < 0 || n <= 0 || start+n > size {
			t.Fatalf("parseRange(%q, %d) = %d,%d", h, size, start, n)
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-1023", "1024-2047", "bytes 0-9/10", "bytes=0-9", "5-4", "-1-2", "a-b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		s, e, err := parseContentRange(h)
		if err == nil && (s < 0 || e < s) {
			t.Fatalf("parseContentRange(%q) = %d-%d", h, s, e)
		}
	})
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/_catalog", "/v2/a/b/manifests/latest", "/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/x", "/v2/../blobs/x", "/v2/a/tags/list", "/v2/a/referrers/sha256:x", "/v2//manifests/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, ok := parseRoute(p)
		if !ok || rt.name == "" {
			return
		}
		if storage.ValidateName(rt.name) == nil && strings.Contains(rt.name, "..") {
			t.Fatalf("route %q yields a dangerous valid name %q", p, rt.name)
		}
	})
}
