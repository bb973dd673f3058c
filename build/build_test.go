package build

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBuildRunAndConfig(t *testing.T) {
	e := newEnv(t, true)
	ctxDir := e.context(map[string]string{"hello.txt": "hello\n", "dir/a": "A", "dir/sub/b": "B"})
	df := `FROM busybox
ARG GREETING=hi
ENV APP=/app PATH=/usr/local/bin:/bin
WORKDIR $APP
COPY hello.txt .
COPY dir/ /data/
RUN echo "$GREETING from $(pwd)" > out.txt && cat hello.txt
LABEL org.example.name="demo app" version=1
EXPOSE 80 53/udp
USER app
VOLUME /data
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s CMD true
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo triggered
ENTRYPOINT ["/bin/sh", "-c"]
CMD echo done
`
	res, img, out := e.mustBuild(ctxDir, df, func(o *Options) { o.Tags = []string{"demo:1"} })
	if !strings.Contains(out, "Step 1/17 : FROM busybox") || !strings.Contains(out, "Successfully built "+short(res.ID)) || !strings.Contains(out, "Successfully tagged demo:1") {
		t.Errorf("output:\n%s", out)
	}
	if !strings.Contains(out, "hello\n") {
		t.Errorf("RUN output missing:\n%s", out)
	}
	c := img.Config.Config
	checks := []struct {
		name      string
		got, want any
	}{
		{"Env", c.Env, []string{"PATH=/usr/local/bin:/bin", "APP=/app"}},
		{"WorkingDir", c.WorkingDir, "/app"},
		{"User", c.User, "app"},
		{"Labels", c.Labels, map[string]string{"org.example.name": "demo app", "version": "1"}},
		{"ExposedPorts", c.ExposedPorts, map[string]struct{}{"80/tcp": {}, "53/udp": {}}},
		{"Volumes", c.Volumes, map[string]struct{}{"/data": {}}},
		{"StopSignal", c.StopSignal, "SIGTERM"},
		{"Shell", c.Shell, []string{"/bin/sh", "-ec"}},
		{"OnBuild", c.OnBuild, []string{"RUN echo triggered"}},
		{"Entrypoint", c.Entrypoint, []string{"/bin/sh", "-c"}},
		{"Cmd", c.Cmd, []string{"/bin/sh", "-ec", "echo done"}},
		{"Healthcheck.Test", c.Healthcheck.Test, []string{"CMD-SHELL", "true"}},
		{"Healthcheck.Interval", c.Healthcheck.Interval, 5 * time.Second},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	files := e.files(img)
	for path, want := range map[string]string{
		"/app/hello.txt": "hello\n",
		"/app/out.txt":   "hi from /app\n",
		"/data/a":        "A",
		"/data/sub/b":    "B",
		"/bin/busybox":   "",
	} {
		f, ok := files[path]
		if !ok {
			t.Errorf("%s missing from image", path)
			continue
		}
		if want != "" && f.data != want {
			t.Errorf("%s = %q, want %q", path, f.data, want)
		}
	}
	for _, p := range []string{"/proc", "/sys", "/dev", "/etc/resolv.conf", "/etc/hostname"} {
		if _, ok := files[p]; ok {
			t.Errorf("mount point %s leaked into the image", p)
		}
	}
	// history: one entry per step after FROM, layers only for COPY and RUN.
	hist := img.Config.History
	var created []string
	for _, h := range hist[1:] {
		created = append(created, h.CreatedBy)
	}
	if len(hist) != 1+16 {
		t.Errorf("history has %d entries, want 17:\n%s", len(hist), strings.Join(created, "\n"))
	}
	if got := len(img.Config.RootFS.DiffIDs); got != 4 {
		t.Errorf("%d layers, want 4 (base, 2 COPY, RUN)", got)
	}
	if !strings.Contains(strings.Join(created, "\n"), `|1 GREETING=hi /bin/sh -c echo "$GREETING from $(pwd)" > out.txt && cat hello.txt`) {
		t.Errorf("RUN history line missing:\n%s", strings.Join(created, "\n"))
	}
}

func TestBuildCacheHitsAndContentKeys(t *testing.T) {
	e := newEnv(t, true)
	ctxDir := e.context(map[string]string{"a.txt": "one", "b.txt": "two"})
	df := "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\nCOPY b.txt /b.txt\nRUN cat /b.txt > /copy2\n"
	r1, _, _ := e.mustBuild(ctxDir, df, nil)
	if r1.CachedSteps != 0 {
		t.Fatalf("cold build used the cache: %+v", r1)
	}
	start := time.Now()
	r2, _, out := e.mustBuild(ctxDir, df, nil)
	elapsed := time.Since(start)
	if r2.ID != r1.ID || r2.CachedSteps != 4 || strings.Contains(out, "Running in") {
		t.Fatalf("rebuild: %+v (first %s)\n%s", r2, r1.ID, out)
	}
	t.Logf("fully cached build: %v", elapsed)
	// Touching a file (new mtime, same content) keeps the cache.
	future := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(ctxDir, "a.txt"), future, future)
	if r, _, _ := e.mustBuild(ctxDir, df, nil); r.ID != r1.ID {
		t.Errorf("mtime change invalidated the cache")
	}
	// Changing b.txt rebuilds only from its COPY.
	os.WriteFile(filepath.Join(ctxDir, "b.txt"), []byte("three"), 0o644)
	r3, img, out := e.mustBuild(ctxDir, df, nil)
	if r3.CachedSteps != 2 || r3.ID == r1.ID {
		t.Errorf("after changing b.txt: %+v\n%s", r3, out)
	}
	if got := e.files(img)["/copy2"].data; got != "three" {
		t.Errorf("/copy2 = %q", got)
	}
	// --no-cache runs everything again.
	r4, _, _ := e.mustBuild(ctxDir, df, func(o *Options) { o.NoCache = true })
	if r4.CachedSteps != 0 {
		t.Errorf("--no-cache used the cache: %+v", r4)
	}
	// Build args are part of the key.
	df2 := "FROM busybox\nARG V=1\nRUN echo $V > /v\n"
	a, _, _ := e.mustBuild(ctxDir, df2, nil)
	v := "2"
	b, img2, _ := e.mustBuild(ctxDir, df2, func(o *Options) { o.BuildArgs = map[string]*string{"V": &v} })
	if a.ID == b.ID || e.files(img2)["/v"].data != "2\n" {
		t.Errorf("build arg change did not rebuild")
	}
}

func TestBuildFailingRunReportsExitCode(t *testing.T) {
	e := newEnv(t, true)
	imagesBefore, _ := e.store.List(context.Background())
	_, out, err := e.build(e.context(nil), "FROM busybox\nRUN echo oops >&2; exit 3\n", nil)
	if err == nil {
		t.Fatal("build succeeded")
	}
	if want := "The command '/bin/sh -c echo oops >&2; exit 3' returned a non-zero code: 3"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if !strings.Contains(out, "oops") {
		t.Errorf("output lacks the step's stderr:\n%s", out)
	}
	after, _ := e.store.List(context.Background())
	if len(after) != len(imagesBefore) {
		t.Errorf("a failed step left %d new images", len(after)-len(imagesBefore))
	}
}
