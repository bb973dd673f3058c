package storage

import (
	"path/filepath"
	"strings"
	"testing"
)

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"library/alpine", "a", "../etc", "a/../b", "a//b", "_x", "a/_manifests", "a.b-c__d/e", "A", "a/", "/a", "a\x00b", "..", "a/./b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateName(name) != nil {
			return
		}
		// A valid name must be a clean relative path inside the root that
		// cannot reach the store's own "_" directories.
		root := "/root/repositories"
		p := filepath.Join(root, name)
		if !strings.HasPrefix(p, root+"/") || filepath.Clean(name) != name {
			t.Fatalf("valid name %q escapes: %s", name, p)
		}
		for _, c := range strings.Split(name, "/") {
			if c == "" || c == "." || c == ".." || strings.HasPrefix(c, "_") {
				t.Fatalf("valid name %q has component %q", name, c)
			}
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{"sha256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("0", 128), "sha256:../../x", "md5:abc", "sha256:" + strings.Repeat("A", 64), ":", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			return
		}
		if d.Validate() != nil {
			t.Fatalf("ParseDigest accepted %q that go-digest rejects", s)
		}
		enc := d.Encoded()
		if strings.ContainsAny(enc, "/.") || len(enc) < 64 {
			t.Fatalf("unsafe encoded part %q", enc)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add("", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:`+strings.Repeat("a", 64)+`","size":2},"layers":[]}`)
	f.Add(MediaTypeOCIIndex, `{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:`+strings.Repeat("b", 64)+`","size":-1}]}`)
	f.Add(MediaTypeDockerManifest, `{"schemaVersion":2,"config":{"digest":"sha256:`+strings.Repeat("c", 64)+`","size":2,"data":"e30="}}`)
	f.Add("", `{"subject":{}}`)
	f.Add("", `[]`)
	f.Fuzz(func(t *testing.T, ct, body string) {
		m, err := ParseManifest(ct, []byte(body))
		if err != nil {
			return
		}
		// Whatever is accepted has well-formed references only.
		for _, d := range m.descriptors() {
			if _, err := ParseDigest(string(d.Digest)); err != nil || d.Size < 0 {
				t.Fatalf("accepted bad descriptor %+v", d)
			}
		}
		if m.Subject != nil {
			if _, err := ParseDigest(string(m.Subject.Digest)); err != nil {
				t.Fatalf("accepted bad subject %+v", m.Subject)
			}
		}
		if m.SchemaVersion != 2 {
			t.Fatalf("accepted schemaVersion %d", m.SchemaVersion)
		}
	})
}
