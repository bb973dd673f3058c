package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuildMultiStageParallelAndTarget(t *testing.T) {
	e := newEnv(t, true)
	ctxDir := e.context(map[string]string{"src.txt": "source"})
	df := `FROM busybox AS a
RUN sleep 0.6 && echo A > /a

FROM busybox AS b
RUN sleep 0.6 && echo B > /b

FROM busybox AS unused
RUN exit 9

FROM busybox
COPY --from=a /a /out/a
COPY --from=b /b /out/b
COPY --from=busybox /bin/busybox /out/bb
`
	start := time.Now()
	res, img, out := e.mustBuild(ctxDir, df, nil)
	elapsed := time.Since(start)
	files := e.files(img)
	if files["/out/a"].data != "A\n" || files["/out/b"].data != "B\n" {
		t.Errorf("multi-stage copies wrong: a=%q b=%q", files["/out/a"].data, files["/out/b"].data)
	}
	if _, ok := files["/out/bb"]; !ok {
		t.Error("COPY --from=image missing")
	}
	if strings.Contains(out, "exit 9") {
		t.Errorf("unneeded stage was built:\n%s", out)
	}
	if elapsed > 1100*time.Millisecond {
		t.Errorf("independent stages took %v: not run in parallel", elapsed)
	}
	_ = res
	// --target builds only up to that stage.
	_, timg, out := e.mustBuild(ctxDir, df, func(o *Options) { o.Target = "b" })
	if _, ok := e.files(timg)["/b"]; !ok || strings.Contains(out, "echo A") {
		t.Errorf("--target b:\n%s", out)
	}
}

func TestBuildCopySemantics(t *testing.T) {
	e := newEnv(t, true)
	ctxDir := e.context(map[string]string{
		"f1.txt": "1", "f2.txt": "2", "other.md": "m",
		"tree/x": "x", "tree/deep/y": "y",
	})
	os.Chmod(filepath.Join(ctxDir, "tree/x"), 0o750)
	df := `FROM busybox
COPY *.txt /wild/
COPY tree /tree-contents
COPY f1.txt /renamed
COPY --chown=app:staff --chmod=600 f2.txt /owned/
ARG WHO=world
COPY <<EOF /inline.txt
hello $WHO
EOF
WORKDIR /w
COPY f1.txt rel/
`
	_, img, _ := e.mustBuild(ctxDir, df, nil)
	files := e.files(img)
	want := map[string]string{
		"/wild/f1.txt": "1", "/wild/f2.txt": "2", "/tree-contents/x": "x", "/tree-contents/deep/y": "y",
		"/renamed": "1", "/owned/f2.txt": "2", "/w/rel/f1.txt": "1",
	}
	for p, w := range want {
		if got, ok := files[p]; !ok || got.data != w {
			t.Errorf("%s = %q (present %v), want %q", p, got.data, ok, w)
		}
	}
	if _, ok := files["/wild/other.md"]; ok {
		t.Error("wildcard matched other.md")
	}
	if _, ok := files["/tree-contents/tree"]; ok {
		t.Error("COPY dir copied the directory itself, not its contents")
	}
	if h := files["/owned/f2.txt"].hdr; h.Uid != 1000 || h.Gid != 50 || h.Mode&0o7777 != 0o600 {
		t.Errorf("--chown/--chmod: uid %d gid %d mode %o", h.Uid, h.Gid, h.Mode)
	}
	if h := files["/tree-contents/x"].hdr; h.Mode&0o777 != 0o750 || h.Uid != 0 {
		t.Errorf("COPY mode/owner: %o uid %d", h.Mode, h.Uid)
	}
	if got := files["/inline.txt"].data; got != "hello world\n" {
		t.Errorf("COPY heredoc = %q", got)
	}
}

func TestBuildAddArchiveAndURL(t *testing.T) {
	e := newEnv(t, true)
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "pkg/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "pkg/data", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4, Uid: 7})
	tw.Write([]byte("data"))
	tw.Close()
	gz.Close()
	ctxDir := e.context(nil)
	os.WriteFile(filepath.Join(ctxDir, "a.tar.gz"), tgz.Bytes(), 0o644)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
		w.Write([]byte("remote content"))
	}))
	defer srv.Close()
	df := "FROM busybox\nADD a.tar.gz /opt/\nADD " + srv.URL + "/files/remote.txt /dl/\n"
	_, img, _ := e.mustBuild(ctxDir, df, nil)
	files := e.files(img)
	if f := files["/opt/pkg/data"]; f.data != "data" || f.hdr.Uid != 7 {
		t.Errorf("ADD tar not extracted: %+v", f)
	}
	if _, ok := files["/opt/a.tar.gz"]; ok {
		t.Error("ADD copied the archive instead of extracting it")
	}
	f := files["/dl/remote.txt"]
	if f.data != "remote content" || f.hdr.Mode&0o777 != 0o600 || f.hdr.ModTime.Year() != 2015 {
		t.Errorf("ADD URL: %q mode %o mtime %v", f.data, f.hdr.Mode, f.hdr.ModTime)
	}
}

func TestBuildRunFeatures(t *testing.T) {
	e := newEnv(t, true)
	ctxDir := e.context(map[string]string{"conf/app.conf": "bound"})
	df := `FROM busybox
SHELL ["/bin/sh", "-c"]
RUN ["/bin/sh", "-c", "echo exec > /exec"]
RUN <<EOF
echo heredoc > /heredoc
echo second >> /heredoc
EOF
RUN cat <<EOT > /cat
via cat
EOT
RUN --mount=type=cache,target=/cache echo run >> /cache/log && cp /cache/log /cachelog
RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && test ! -e /tmpfsleak
RUN --mount=type=bind,source=conf,target=/conf cat /conf/app.conf > /bound
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /secret-copy
RUN --network=none sh -c 'ip link 2>/dev/null | grep -c "^[0-9]" > /links || echo 1 > /links'
ARG TARGETARCH
RUN echo "$TARGETARCH" > /arch
`
	secrets := map[string][]byte{"tok": []byte("s3cret")}
	_, img, _ := e.mustBuild(ctxDir, df, func(o *Options) { o.Secrets = secrets })
	files := e.files(img)
	for p, w := range map[string]string{
		"/exec": "exec\n", "/heredoc": "heredoc\nsecond\n", "/cat": "via cat\n",
		"/cachelog": "run\n", "/bound": "bound", "/secret-copy": "s3cret", "/links": "1\n",
	} {
		if got := files[p].data; got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	if a := files["/arch"].data; a == "\n" || a == "" {
		t.Errorf("TARGETARCH empty")
	}
	for _, p := range []string{"/cache", "/scratch", "/conf", "/run/secrets/tok"} {
		if _, ok := files[p]; ok {
			t.Errorf("mount target %s leaked into the layer", p)
		}
	}
	// The cache mount persists across builds (even uncached ones).
	_, img2, _ := e.mustBuild(ctxDir, df, func(o *Options) { o.Secrets = secrets; o.NoCache = true })
	if got := e.files(img2)["/cachelog"].data; got != "run\nrun\n" {
		t.Errorf("cache mount did not persist: %q", got)
	}
}

func TestBuildOnbuildAndArgBeforeFrom(t *testing.T) {
	e := newEnv(t, true)
	ctxDir := e.context(map[string]string{"x": "x"})
	_, _, _ = e.mustBuild(ctxDir, "FROM busybox\nONBUILD RUN echo fired > /fired\n", func(o *Options) { o.Tags = []string{"base-onbuild"} })
	df := "ARG BASE=base-onbuild\nFROM ${BASE}\nENTRYPOINT [\"/bin/true\"]\n"
	_, img, out := e.mustBuild(ctxDir, df, nil)
	if e.files(img)["/fired"].data != "fired\n" || !strings.Contains(out, "Executing build trigger") {
		t.Errorf("ONBUILD trigger did not run:\n%s", out)
	}
	if len(img.Config.Config.OnBuild) != 0 {
		t.Errorf("OnBuild inherited: %v", img.Config.Config.OnBuild)
	}
	if img.Config.Config.Cmd != nil {
		t.Errorf("ENTRYPOINT kept the base image's CMD: %v", img.Config.Config.Cmd)
	}
}

func TestBuildReproducibleWithSourceDateEpoch(t *testing.T) {
	e := newEnv(t, true)
	ctxDir := e.context(map[string]string{"f": "content"})
	df := "FROM busybox\nCOPY f /f\nRUN echo x > /x\nENV A=1\n"
	epoch := "1700000000"
	opts := func(o *Options) { o.NoCache = true; o.BuildArgs = map[string]*string{"SOURCE_DATE_EPOCH": &epoch} }
	r1, img, _ := e.mustBuild(ctxDir, df, opts)
	time.Sleep(1100 * time.Millisecond)
	r2, _, _ := e.mustBuild(ctxDir, df, opts)
	if r1.ID != r2.ID {
		t.Errorf("same inputs with SOURCE_DATE_EPOCH gave %s and %s", r1.ID, r2.ID)
	}
	if !img.Created.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("Created = %v", img.Created)
	}
	if mt := e.files(img)["/x"].hdr.ModTime; mt.After(time.Unix(1700000000, 0)) {
		t.Errorf("layer mtime %v not clamped", mt)
	}
}

func TestBuildErrors(t *testing.T) {
	e := newEnv(t, true)
	ctxDir := e.context(map[string]string{"f": "x"})
	cases := []struct {
		name, df, want string
	}{
		{"unknown instruction", "FROM busybox\nFOO bar\n", "dockerfile parse error on line 2: unknown instruction: FOO"},
		{"syntax", "FROM busybox\nENV\n", "line 2"},
		{"caret", "FROM busybox\nBOGUS x\nRUN true\n", ">>> BOGUS x"},
		{"outside context", "FROM busybox\nCOPY ../etc/passwd /x\n", "forbidden path outside the build context: ../etc/passwd"},
		{"missing file", "FROM busybox\nCOPY nope /x\n", "file not found in build context"},
		{"missing wildcard", "FROM busybox\nCOPY *.nope /x/\n", "no source files were specified"},
		{"missing image", "FROM does-not-exist:1\n", "does-not-exist:1"},
		{"missing stage copy", "FROM busybox\nCOPY --from=ghost /a /a\n", "ghost"},
		{"circular", "FROM busybox AS a\nFROM a AS b\nFROM b AS b\n", "circular dependency detected on stage: b"},
		{"multi to file", "FROM busybox\nCOPY f f /dest\n", "destination must be a directory and end with a /"},
		{"empty", "# nothing\n", "file with no instructions"},
		{"no from", "RUN true\n", "no build stage in current context"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := e.build(ctxDir, c.df, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	_, _, err := e.build(ctxDir, "FROM busybox\n", func(o *Options) { o.Target = "nosuch" })
	if err == nil || !strings.Contains(err.Error(), "failed to reach build target nosuch") {
		t.Errorf("missing target: %v", err)
	}
}

func TestBuildCacheEvictionAndPrune(t *testing.T) {
	e := newEnv(t, true)
	e.b.cache.limit = 1 // evict everything beyond the newest build's pins
	ctxDir := e.context(map[string]string{"f": strings.Repeat("x", 4096)})
	r, _, _ := e.mustBuild(ctxDir, "FROM busybox\nCOPY f /f\nRUN echo a > /a\n", nil)
	e.b.evictOverLimit()
	if len(e.b.cache.entries) != 0 {
		t.Errorf("%d entries survive a 1-byte limit", len(e.b.cache.entries))
	}
	if _, err := e.store.Get(context.Background(), r.ID.String()); err == nil {
		t.Error("evicted untagged image still present")
	}
	e.b.cache.limit = DefaultCacheLimit
	r2, _, _ := e.mustBuild(ctxDir, "FROM busybox\nCOPY f /f\n", func(o *Options) { o.Tags = []string{"keep:1"} })
	rep, err := e.b.Prune(context.Background(), true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Get(context.Background(), r2.ID.String()); err != nil {
		t.Errorf("prune deleted a tagged image: %v", err)
	}
	if len(e.b.cache.entries) != 0 || rep == nil {
		t.Errorf("prune left %d entries", len(e.b.cache.entries))
	}
}
