package build

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const alpineDir = "/work/shared/images/alpine"

// TestBuildOfficialAlpineDockerfile builds the official Alpine Dockerfile
// (FROM scratch + ADD of the rootfs tarball) and runs the result.
func TestBuildOfficialAlpineDockerfile(t *testing.T) {
	if _, err := os.Stat(filepath.Join(alpineDir, "Dockerfile")); err != nil {
		t.Skipf("skipping: %s is absent (the shared Alpine image files)", alpineDir)
	}
	e := newEnv(t, false)
	res, img, out := e.mustBuild(alpineDir, "", func(o *Options) {
		o.DockerfileContent = nil
		o.Tags = []string{"alpine:built"}
	})
	if !strings.Contains(out, "Successfully tagged alpine:built") {
		t.Errorf("output:\n%s", out)
	}
	if got := img.Config.Config.Cmd; len(got) != 1 || got[0] != "/bin/sh" {
		t.Errorf("Cmd = %v", got)
	}
	if n := len(img.Config.RootFS.DiffIDs); n != 1 {
		t.Errorf("%d layers, want 1", n)
	}
	files := e.files(img)
	if !strings.Contains(files["/etc/alpine-release"].data, "3.20.3") {
		t.Errorf("/etc/alpine-release = %q", files["/etc/alpine-release"].data)
	}
	// Run it: a RUN step on the built image exercises musl, apk's db and
	// busybox from the tarball.
	var buf bytes.Buffer
	_, err := e.b.Build(context.Background(), Options{
		ContextDir:        t.TempDir(),
		DockerfileContent: []byte("FROM " + res.ID.String() + "\nRUN cat /etc/alpine-release && apk --version > /apk\n"),
		Output:            &buf,
	})
	if err != nil || !strings.Contains(buf.String(), "3.20.3") {
		t.Fatalf("running the built Alpine image: %v\n%s", err, buf.String())
	}
}
