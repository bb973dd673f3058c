package build

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/runtime"
)

// TestMain lets the test binary serve as the container init the built-in
// runtime re-executes (/proc/self/exe __init).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "__init" {
		runtime.InitMain()
		return
	}
	os.Exit(m.Run())
}

type env struct {
	t     *testing.T
	store *image.Store
	b     *Builder
	dir   string
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts overlay snapshots and runs containers")
	}
}

// newEnv opens a store and builder under a temp dir, with a "busybox"
// image made from the host's static busybox when RUN steps need one.
func newEnv(t *testing.T, withBusybox bool) *env {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	ctx := context.Background()
	st, err := image.Open(ctx, filepath.Join(dir, "image"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rt, err := runtime.New(runtime.Options{StateDir: filepath.Join(dir, "rtstate")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{
		Store:  st,
		Runner: &RuntimeRunner{Runtime: rt, BundleDir: filepath.Join(dir, "bundles")},
		Root:   filepath.Join(dir, "build"),
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, b: b, dir: dir}
	if withBusybox {
		e.importBusybox()
	}
	return e
}

func (e *env) importBusybox() {
	e.t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		e.t.Skip("busybox not installed (apt-get install busybox-static)")
	}
	root := filepath.Join(e.dir, "bbroot")
	for _, d := range []string{"bin", "etc", "tmp"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		e.t.Fatal(err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			os.Symlink("busybox", filepath.Join(root, "bin", a))
		}
	}
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "group"), []byte("root:x:0:\nnogroup:x:65534:\napp:x:1000:\nstaff:x:50:\n"), 0o644)
	var buf bytes.Buffer
	if err := archive.Tar(context.Background(), &buf, root); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.store.Import(context.Background(), &buf, image.ImportOptions{Ref: "busybox", Changes: []string{`CMD ["sh"]`}}); err != nil {
		e.t.Fatal(err)
	}
}

// context writes files (name -> content; a trailing "/" makes a dir) into
// a fresh context dir.
func (e *env) context(files map[string]string) string {
	e.t.Helper()
	dir := e.t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			os.MkdirAll(p, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	return dir
}

func (e *env) build(ctxDir, dockerfile string, mod func(*Options)) (*Result, string, error) {
	e.t.Helper()
	var out bytes.Buffer
	opts := Options{ContextDir: ctxDir, DockerfileContent: []byte(dockerfile), Output: &out}
	if mod != nil {
		mod(&opts)
	}
	res, err := e.b.Build(context.Background(), opts)
	return res, out.String(), err
}

func (e *env) mustBuild(ctxDir, dockerfile string, mod func(*Options)) (*Result, *image.Image, string) {
	e.t.Helper()
	res, out, err := e.build(ctxDir, dockerfile, mod)
	if err != nil {
		e.t.Fatalf("build: %v\noutput:\n%s", err, out)
	}
	img, err := e.store.Get(context.Background(), res.ID.String())
	if err != nil {
		e.t.Fatal(err)
	}
	return res, img, out
}

// files returns the image's merged filesystem as path -> entry, read from
// its layers in order (whiteouts applied).
func (e *env) files(img *image.Image) map[string]fileEntry {
	e.t.Helper()
	v, err := e.store.View(context.Background(), img.ID.String())
	if err != nil {
		e.t.Fatal(err)
	}
	layers, err := v.Layers()
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]fileEntry{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			e.t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				e.t.Fatal(err)
			}
			name := "/" + strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
			base := filepath.Base(name)
			if strings.HasPrefix(base, ".wh.") {
				if base == ".wh..wh..opq" {
					dir := filepath.Dir(name)
					for k := range out {
						if strings.HasPrefix(k, dir+"/") {
							delete(out, k)
						}
					}
					continue
				}
				target := filepath.Join(filepath.Dir(name), strings.TrimPrefix(base, ".wh."))
				for k := range out {
					if k == target || strings.HasPrefix(k, target+"/") {
						delete(out, k)
					}
				}
				continue
			}
			data, _ := io.ReadAll(tr)
			out[name] = fileEntry{hdr: h, data: string(data)}
		}
		rc.Close()
	}
	return out
}

type fileEntry struct {
	hdr  *tar.Header
	data string
}
