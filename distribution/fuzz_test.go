package distribution

import (
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func FuzzDecodeManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`), "")
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":3,"platform":{"os":"linux","architecture":"amd64"}}]}`), ocispec.MediaTypeImageIndex)
	f.Add([]byte(`{"schemaVersion":1}`), "application/json")
	f.Fuzz(func(t *testing.T, b []byte, ct string) {
		d, err := DecodeManifest(b, ct)
		if err != nil {
			return
		}
		if (d.manifest == nil) == (d.index == nil) {
			t.Fatalf("decoded %q as neither or both manifest and index", b)
		}
		if d.index != nil {
			selectManifest(d.index, HostPlatform())
		}
		if d.manifest != nil {
			for _, l := range d.manifest.Layers {
				if l.Digest.Validate() != nil || l.Size < 0 {
					t.Fatalf("accepted a bad layer descriptor %+v", l)
				}
			}
		}
	})
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte(`{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":["sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeConfig(b)
		if err != nil {
			return
		}
		for _, d := range c.RootFS.DiffIDs {
			if d.Validate() != nil {
				t.Fatalf("accepted diff ID %q", d)
			}
		}
	})
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`)
	f.Add(`Basic realm="x"`)
	f.Add(`Bearer realm="unterminated`)
	f.Fuzz(func(t *testing.T, h string) {
		parseChallenge(h)
	})
}

func FuzzDecodeAuthHeader(f *testing.F) {
	f.Add(EncodeAuthHeader(AuthConfig{Username: "u", Password: "p"}))
	f.Add("e30=")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := DecodeAuthHeader(h)
		if err != nil {
			return
		}
		if b, err := DecodeAuthHeader(EncodeAuthHeader(a)); err != nil || b != a {
			t.Fatalf("round trip of %+v gave %+v, %v", a, b, err)
		}
	})
}
