package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

const alpineTarball = "/work/shared/images/alpine/alpine-minirootfs-3.20.3-x86_64.tar.gz"

type tentry struct {
	name, body, link string
	typ              byte
	mode             int64
}

// mkTar builds a tar; t may be nil outside tests (crash child).
func mkTar(t testing.TB, ents ...tentry) []byte {
	fatal := func(err error) {
		if t == nil {
			panic(err)
		}
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if e.typ == tar.TypeDir {
				mode = 0o755
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: mode, Size: int64(len(e.body)), ModTime: time.Unix(1600000000, 0)}); err != nil {
			fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return buf.Bytes()
}

// busyboxTar is a minimal rootfs: /bin/busybox from the host plus applet links.
func busyboxTar(t testing.TB) []byte {
	t.Helper()
	bin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs /bin/busybox (apt-get install -y busybox-static)")
	}
	ents := []tentry{{name: "bin/", typ: tar.TypeDir}, {name: "bin/busybox", body: string(bin), typ: tar.TypeReg, mode: 0o755}}
	for _, a := range []string{"sh", "echo", "ls", "cat", "true"} {
		ents = append(ents, tentry{name: "bin/" + a, link: "busybox", typ: tar.TypeSymlink, mode: 0o777})
	}
	ents = append(ents, tentry{name: "etc/", typ: tar.TypeDir}, tentry{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\n", typ: tar.TypeReg}, tentry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777})
	return mkTar(t, ents...)
}

func newStore(t testing.TB) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := Open(context.Background(), root, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, root
}

func TestImportAndGet(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	raw := busyboxTar(t)
	img, err := s.Import(ctx, bytes.NewReader(raw), ImportOptions{
		Ref:     "busybox",
		Changes: []string{`CMD ["sh"]`, "ENV A=1 B=\"two words\"", "WORKDIR /srv", "USER nobody", "EXPOSE 80 53/udp", "LABEL a=b"},
		Message: "from test",
	})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if got := img.Config.RootFS.DiffIDs; len(got) != 1 || got[0].Encoded() != hex.EncodeToString(sum[:]) {
		t.Errorf("diff IDs = %v, want sha256 of the tar", got)
	}
	c := img.Config.Config
	if strings.Join(c.Cmd, " ") != "sh" || strings.Join(c.Env, ",") != "A=1,B=two words" || c.WorkingDir != "/srv" || c.User != "nobody" || c.Labels["a"] != "b" || len(c.ExposedPorts) != 2 {
		t.Errorf("config = %+v", c)
	}
	if img.Size < int64(len(raw))/2 || img.Config.OS != "linux" || img.Config.Architecture == "" {
		t.Errorf("size %d os %q arch %q", img.Size, img.Config.OS, img.Config.Architecture)
	}
	if want := []string{"docker.io/library/busybox:latest"}; strings.Join(img.RepoTags, ",") != want[0] {
		t.Errorf("RepoTags = %v", img.RepoTags)
	}
	hexID := img.ID.Encoded()
	for _, ref := range []string{"busybox", "busybox:latest", "docker.io/library/busybox:latest", img.ID.String(), hexID, hexID[:12], hexID[:3], "busybox@" + img.ManifestDigest.String()} {
		got, err := s.Get(ctx, ref)
		if err != nil || got.ID != img.ID {
			t.Errorf("Get(%q) = %v, %v", ref, got, err)
		}
	}
	for _, ref := range []string{"nope", "busybox:other", "sha256:" + strings.Repeat("0", 64), "zzz"} {
		_, err := s.Get(ctx, ref)
		if !errdefs.IsNotFound(err) || err.Error() != "No such image: "+ref {
			t.Errorf("Get(%q) err = %v, want NotFound", ref, err)
		}
	}
	hist, err := s.History(ctx, img.ID)
	if err != nil || len(hist) != 1 || hist[0].ID != img.ID.String() || hist[0].Comment != "from test" || hist[0].Size != img.Size {
		t.Errorf("history = %+v, %v", hist, err)
	}
	if err := s.Tag(ctx, img.ID, "example.com/x/y:v1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, digest.FromString("x"), "a:b"); !errdefs.IsNotFound(err) {
		t.Errorf("tag of missing image: %v", err)
	}
	got, _ := s.Get(ctx, "example.com/x/y:v1")
	if got == nil || strings.Join(got.RepoTags, ",") != "docker.io/library/busybox:latest,example.com/x/y:v1" {
		t.Errorf("after tag: %+v", got)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 {
		t.Errorf("List = %v, %v", list, err)
	}
}

func TestImportCompressedSharesLayer(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	raw := busyboxTar(t)
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(raw)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(raw)
	zw.Close()
	var ids []digest.Digest
	for _, in := range [][]byte{raw, gz.Bytes(), zs.Bytes()} {
		img, err := s.Import(ctx, bytes.NewReader(in), ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, img.Config.RootFS.DiffIDs[0])
	}
	if ids[0] != ids[1] || ids[0] != ids[2] {
		t.Errorf("diff IDs differ: %v", ids)
	}
	if n := countDirs(t, filepath.Join(root, "overlay")); n != 1 {
		t.Errorf("%d snapshot dirs, want 1 shared", n)
	}
}

func countDirs(t testing.TB, dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestImportRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	tests := map[string][]byte{
		"escape":    mkTar(t, tentry{name: "ok", body: "x", typ: tar.TypeReg}, tentry{name: "../../evil", body: "x", typ: tar.TypeReg}),
		"hardlink":  mkTar(t, tentry{name: "h", link: "../../../etc/passwd", typ: tar.TypeLink}),
		"truncated": mkTar(t, tentry{name: "f", body: strings.Repeat("x", 5000), typ: tar.TypeReg})[:2000],
		"garbage":   bytes.Repeat([]byte("garbage!"), 200),
		"empty":     nil,
		"xz":        {0xfd, '7', 'z', 'X', 'Z', 0, 0, 0},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			s, root := newStore(t)
			_, err := s.Import(ctx, bytes.NewReader(in), ImportOptions{Ref: "bad"})
			if !errdefs.IsInvalidParameter(err) {
				t.Fatalf("err = %v, want InvalidParameter", err)
			}
			if list, _ := s.List(ctx); len(list) != 0 {
				t.Errorf("half-written image left: %v", list)
			}
			for _, d := range []string{"overlay", "content/ingest", "content/blobs/sha256"} {
				if n := countDirs(t, filepath.Join(root, d)); n != 0 {
					t.Errorf("%s has %d leftovers", d, n)
				}
			}
		})
	}
}

func TestDeleteSemantics(t *testing.T) {
	ctx := context.Background()
	type step struct {
		ref        string
		force      bool
		inUse      bool
		wantErr    func(error) bool
		wantResult string // "U:ref" / "D" joined by ","
	}
	tests := []struct {
		name  string
		tags  []string
		steps []step
		left  bool // image still present at the end
	}{
		{"by tag, last ref", []string{"a"}, []step{{ref: "a", wantResult: "U:docker.io/library/a:latest,D"}}, false},
		{"by tag, other tag stays", []string{"a", "b"}, []step{{ref: "a", wantResult: "U:docker.io/library/a:latest"}}, true},
		{"by ID, one repo many tags", []string{"a:1", "a:2"}, []step{{ref: "ID", wantResult: "U:docker.io/library/a:1,U:docker.io/library/a:2,D"}}, false},
		{"by ID, two repos", []string{"a", "b"}, []step{
			{ref: "ID", wantErr: errdefs.IsConflict},
			{ref: "ID", force: true, wantResult: "U:docker.io/library/a:latest,U:docker.io/library/b:latest,D"},
		}, false},
		{"in use, by tag", []string{"a"}, []step{
			{ref: "a", inUse: true, wantErr: errdefs.IsConflict},
			{ref: "a", inUse: true, force: true, wantResult: "U:docker.io/library/a:latest"},
		}, true},
		{"in use, by tag with another tag", []string{"a", "b"}, []step{{ref: "b", inUse: true, wantResult: "U:docker.io/library/b:latest"}}, true},
		{"in use, by ID", []string{"a"}, []step{
			{ref: "ID", inUse: true, wantErr: errdefs.IsConflict},
			{ref: "ID", inUse: true, force: true, wantResult: "U:docker.io/library/a:latest"},
		}, true},
		{"untagged by short ID", nil, []step{{ref: "SHORT", wantResult: "D"}}, false},
		{"missing", nil, []step{{ref: "nope", wantErr: errdefs.IsNotFound}}, true},
	}
	raw := busyboxTar(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, root := newStore(t)
			img, err := s.Import(ctx, bytes.NewReader(raw), ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range tt.tags {
				if err := s.Tag(ctx, img.ID, tag); err != nil {
					t.Fatal(err)
				}
			}
			for _, st := range tt.steps {
				ref := strings.NewReplacer("SHORT", img.ID.Encoded()[:12], "ID", img.ID.String()).Replace(st.ref)
				res, err := s.Delete(ctx, ref, st.force, false, func(id digest.Digest) bool { return st.inUse && id == img.ID })
				if st.wantErr != nil {
					if !st.wantErr(err) {
						t.Fatalf("Delete(%s) err = %v", ref, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Delete(%s): %v", ref, err)
				}
				var got []string
				for _, r := range res {
					if r.Untagged != "" {
						got = append(got, "U:"+r.Untagged)
					} else {
						got = append(got, "D")
						if r.Deleted != img.ID.String() {
							t.Errorf("deleted %s", r.Deleted)
						}
					}
				}
				if strings.Join(got, ",") != st.wantResult {
					t.Errorf("Delete(%s) = %v, want %s", ref, got, st.wantResult)
				}
			}
			_, err = s.Get(ctx, img.ID.String())
			if (err == nil) != tt.left {
				t.Errorf("image present = %v, want %v", err == nil, tt.left)
			}
			if !tt.left {
				for _, d := range []string{"overlay", "content/blobs/sha256"} {
					if n := countDirs(t, filepath.Join(root, d)); n != 0 {
						t.Errorf("%s: %d entries left after delete", d, n)
					}
				}
			}
		})
	}
}

func TestDeleteKeepsSharedLayer(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	raw := busyboxTar(t)
	a, _ := s.Import(ctx, bytes.NewReader(raw), ImportOptions{Ref: "a"})
	b, err := s.Import(ctx, bytes.NewReader(raw), ImportOptions{Ref: "b", Changes: []string{"CMD echo b"}})
	if err != nil || a.ID == b.ID {
		t.Fatalf("b: %v (same id %v)", err, a.ID == b.ID)
	}
	if _, err := s.Delete(ctx, "a", false, false, nil); err != nil {
		t.Fatal(err)
	}
	if n := countDirs(t, filepath.Join(root, "overlay")); n != 1 {
		t.Fatalf("shared snapshot removed (%d dirs)", n)
	}
	got, err := s.Get(ctx, "b")
	if err != nil || strings.Join(got.Config.Config.Cmd, " ") != "/bin/sh -c echo b" {
		t.Fatalf("b after deleting a: %+v %v", got, err)
	}
	rc, err := mustView(t, s, "b").layer0().Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(body, raw) {
		t.Error("layer blob of b lost or changed")
	}
}

type viewT struct {
	t *testing.T
	View
}

func mustView(t *testing.T, s *Store, ref string) viewT {
	v, err := s.View(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return viewT{t, v}
}

func (v viewT) layer0() Layer {
	ls, err := v.Layers()
	if err != nil || len(ls) == 0 {
		v.t.Fatalf("layers: %v %v", ls, err)
	}
	return ls[0]
}

func TestRecoverAfterCrash(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	img, err := s.Import(ctx, bytes.NewReader(busyboxTar(t)), ImportOptions{Ref: "keep"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// What a kill -9 can leave: an unfinished blob, a half-unpacked layer,
	// an installed but unrecorded snapshot and blob.
	leftovers := []string{
		filepath.Join(root, "content/ingest/abc"),
		filepath.Join(root, "overlay/tmp-0123/diff/bin/x"),
		filepath.Join(root, "overlay", strings.Repeat("a", 64), "diff/f"),
		filepath.Join(root, "content/blobs/sha256", strings.Repeat("b", 64)),
	}
	for _, p := range leftovers {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("x"), 0o644)
	}
	s2, err := Open(ctx, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, p := range leftovers {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s survived recovery", p)
		}
	}
	got, err := s2.Get(ctx, "keep")
	if err != nil || got.ID != img.ID {
		t.Fatalf("image lost: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "overlay", img.Config.RootFS.DiffIDs[0].Encoded(), "diff/bin/busybox")); err != nil {
		t.Errorf("recorded snapshot damaged: %v", err)
	}
}

func TestConcurrentImportsAndDeletes(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	raw := busyboxTar(t)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ref := []string{"x", "y", "z"}[i%3]
			for j := 0; j < 3; j++ {
				if _, err := s.Import(ctx, bytes.NewReader(raw), ImportOptions{Ref: ref}); err != nil {
					errs <- err
					return
				}
				if _, err := s.Delete(ctx, ref, true, false, nil); err != nil && !errdefs.IsNotFound(err) {
					errs <- err
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Whatever images remain must be complete.
	list, _ := s.List(ctx)
	for _, img := range list {
		v := mustView(t, s, img.ID.String())
		rc, err := v.layer0().Uncompressed()
		if err != nil {
			t.Fatalf("image %s lost its layer: %v", img.ID, err)
		}
		rc.Close()
	}
}

func TestPutRoundTrip(t *testing.T) {
	ctx := context.Background()
	src, _ := newStore(t)
	img, err := src.Import(ctx, bytes.NewReader(busyboxTar(t)), ImportOptions{Ref: "src"})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := src.View(ctx, "src")
	dst, _ := newStore(t)
	got, err := dst.Put(ctx, v, PutOptions{Ref: "example.com/copy:1", RecordDigest: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != img.ID || got.ManifestDigest != img.ManifestDigest {
		t.Errorf("copy has id %s manifest %s, want %s %s", got.ID, got.ManifestDigest, img.ID, img.ManifestDigest)
	}
	if len(got.RepoDigests) != 1 || got.RepoDigests[0] != "example.com/copy@"+img.ManifestDigest.String() {
		t.Errorf("RepoDigests = %v", got.RepoDigests)
	}

	// A gzip layer from elsewhere keeps its compressed digest.
	layerTar := mkTar(t, tentry{name: "hello", body: "world", typ: tar.TypeReg})
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(layerTar)
	gw.Close()
	l := BytesLayer(gz.Bytes(), "application/vnd.oci.image.layer.v1.tar+gzip")
	diffID, _ := l.DiffID()
	if diffID != digest.FromBytes(layerTar) {
		t.Fatalf("DiffID = %s", diffID)
	}
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + diffID.String() + `"]},"config":{"Cmd":["/hello"]}}`)
	nv, err := NewView(cfg, []Layer{l})
	if err != nil {
		t.Fatal(err)
	}
	put, err := dst.Put(ctx, nv, PutOptions{Ref: "gz"})
	if err != nil {
		t.Fatal(err)
	}
	stored := mustView(t, dst, "gz").layer0()
	if d, _ := stored.Digest(); d != digest.FromBytes(gz.Bytes()) {
		t.Errorf("stored layer digest %s, want the gzip blob's", d)
	}
	if put.ID != digest.FromBytes(cfg) {
		t.Errorf("ID %s is not the config digest", put.ID)
	}
	// A config that lies about its diff IDs is refused.
	bad := []byte(`{"os":"linux","rootfs":{"type":"layers","diff_ids":["` + digest.FromString("x").String() + `"]}}`)
	bv, _ := NewView(bad, []Layer{BytesLayer(gz.Bytes(), "application/vnd.oci.image.layer.v1.tar+gzip")})
	if _, err := dst.Put(ctx, bv, PutOptions{}); !errdefs.IsInvalidParameter(err) {
		t.Errorf("lying config: err = %v", err)
	}
}

func TestCommitOnParent(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	base, err := s.Import(ctx, bytes.NewReader(busyboxTar(t)), ImportOptions{Ref: "base", Changes: []string{"ENV A=1"}})
	if err != nil {
		t.Fatal(err)
	}
	layer := mkTar(t, tentry{name: "etc/.wh.passwd", typ: tar.TypeReg}, tentry{name: "new", body: "n", typ: tar.TypeReg})
	cfg := base.Config.Config
	cfg.Cmd = []string{"cat", "/new"}
	child, err := s.Commit(ctx, CommitOptions{Parent: base.ID, Layer: bytes.NewReader(layer), Config: &cfg, CreatedBy: "RUN rm /etc/passwd", Ref: "child"})
	if err != nil {
		t.Fatal(err)
	}
	if len(child.Config.RootFS.DiffIDs) != 2 || len(child.Config.History) != 2 || child.Config.Config.Env[0] != "A=1" {
		t.Fatalf("child config: %+v", child.Config)
	}
	hist, _ := s.History(ctx, child.ID)
	if len(hist) != 2 || hist[0].CreatedBy != "RUN rm /etc/passwd" || hist[1].ID != "<missing>" || hist[0].Size != 1 {
		t.Errorf("history = %+v", hist)
	}
	meta, err := s.Commit(ctx, CommitOptions{Parent: child.ID, CreatedBy: "LABEL x=y"})
	if err != nil || len(meta.Config.RootFS.DiffIDs) != 2 || !meta.Config.History[2].EmptyLayer {
		t.Fatalf("metadata-only commit: %+v %v", meta, err)
	}
}

func TestAlpineImport(t *testing.T) {
	f, err := os.Open(alpineTarball)
	if err != nil {
		t.Skipf("alpine tarball not available: %v", err)
	}
	defer f.Close()
	ctx := context.Background()
	s, root := newStore(t)
	img, err := s.Import(ctx, f, ImportOptions{Ref: "alpine:3.20"})
	if err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(root, "overlay", img.Config.RootFS.DiffIDs[0].Encoded(), "diff")
	if b, err := os.ReadFile(filepath.Join(snap, "etc/alpine-release")); err != nil || !strings.HasPrefix(string(b), "3.20") {
		t.Errorf("alpine-release: %q %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(snap, "bin/sh")); err != nil || l != "/bin/busybox" {
		t.Errorf("bin/sh -> %q %v", l, err)
	}
	if img.Size < 5<<20 {
		t.Errorf("size %d too small", img.Size)
	}
}

func TestChanges(t *testing.T) {
	tests := []struct {
		changes []string
		cfg     string
		wantErr bool
	}{
		{changes: []string{`CMD ["a", "b c"]`}, cfg: `"Cmd":["a","b c"]`},
		{changes: []string{`CMD echo hi`}, cfg: `"Cmd":["/bin/sh","-c","echo hi"]`},
		{changes: []string{`CMD x`, `ENTRYPOINT ["/e"]`}, cfg: `"Entrypoint":["/e"],"Cmd":["/bin/sh","-c","x"]`},
		{changes: []string{`ENTRYPOINT /e -x`}, cfg: `"Entrypoint":["/bin/sh","-c","/e -x"]`},
		{changes: []string{`ENV A=1 B="2 3"`, `ENV A 4 5`}, cfg: `"Env":["A=4 5","B=2 3"]`},
		{changes: []string{`WORKDIR /a`, `WORKDIR b/../c`}, cfg: `"WorkingDir":"/a/c"`},
		{changes: []string{`USER 1000:1000`, `STOPSIGNAL SIGINT`}, cfg: `"User":"1000:1000"`},
		{changes: []string{`EXPOSE 8000-8001/udp`}, cfg: `"ExposedPorts":{"8000/udp":{},"8001/udp":{}}`},
		{changes: []string{`VOLUME ["/v1", "/v2"]`}, cfg: `"Volumes":{"/v1":{},"/v2":{}}`},
		{changes: []string{`LABEL "my key"=v other='x y'`}, cfg: `"Labels":{"my key":"v","other":"x y"}`},
		{changes: []string{`cmd ["lower"]`}, cfg: `"Cmd":["lower"]`},
		{changes: []string{`FROM x`}, wantErr: true},
		{changes: []string{`EXPOSE abc`}, wantErr: true},
		{changes: []string{`LABEL novalue`}, wantErr: true},
		{changes: []string{`ENV A="unterminated`}, wantErr: true},
		{changes: []string{`WORKDIR`}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.changes, ";"), func(t *testing.T) {
			var img Image
			err := applyChanges(&img.Config.Config, tt.changes)
			if tt.wantErr {
				if !errdefs.IsInvalidParameter(err) {
					t.Fatalf("err = %v, want InvalidParameter", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := jsonMarshal(img.Config.Config)
			if !strings.Contains(b, tt.cfg) {
				t.Errorf("config %s does not contain %s", b, tt.cfg)
			}
		})
	}
}

func jsonMarshal(v any) (string, error) {
	var buf bytes.Buffer
	enc := jsonEncoder(&buf)
	err := enc.Encode(v)
	return buf.String(), err
}

func jsonEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// threeLayers is an image whose layers overwrite and delete each other's
// files; lie replaces the second diff ID with a wrong one.
func threeLayers(t *testing.T, lie bool) View {
	tars := [][]byte{
		busyboxTar(t),
		mkTar(t, tentry{name: "f", body: "1", typ: tar.TypeReg}, tentry{name: "g", body: "g", typ: tar.TypeReg}),
		mkTar(t, tentry{name: "f", body: "2", typ: tar.TypeReg}, tentry{name: ".wh.g", typ: tar.TypeReg}),
	}
	var layers []Layer
	var diffs []string
	for i, tb := range tars {
		mt, blob := "application/vnd.oci.image.layer.v1.tar", tb
		if i == 1 {
			mt, blob = "application/vnd.oci.image.layer.v1.tar+gzip", gzipBytes(tb)
		}
		layers = append(layers, BytesLayer(blob, mt))
		d := digest.FromBytes(tb).String()
		if lie && i == 1 {
			d = digest.FromString("lie").String()
		}
		diffs = append(diffs, `"`+d+`"`)
	}
	cfg := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[` + strings.Join(diffs, ",") + `]},"config":{"Cmd":["sh"]}}`
	v, err := NewView([]byte(cfg), layers)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPutMultiLayerFailureLeavesNothing(t *testing.T) {
	s, root := newStore(t)
	if _, err := s.Put(context.Background(), threeLayers(t, true), PutOptions{Ref: "x"}); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("err = %v", err)
	}
	for _, d := range []string{"overlay", "content/ingest", "content/blobs/sha256"} {
		if n := countDirs(t, filepath.Join(root, d)); n != 0 {
			t.Errorf("%s: %d leftovers", d, n)
		}
	}
}

func TestOpenTwiceIsRefused(t *testing.T) {
	_, root := newStore(t)
	start := time.Now()
	_, err := Open(context.Background(), root, nil)
	if err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Fatalf("second Open: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("second Open took %v", time.Since(start))
	}
}
