package distribution

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
)

func mustRef(t *testing.T, s string) Ref {
	t.Helper()
	r, err := ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPushPullRoundTrip(t *testing.T) {
	ctx := context.Background()
	host := newRegistry(t, anonymous, nil)
	c := newClient(t)
	store, _ := newStore(t)
	src := testImage(t, hostArch(), true,
		mkTar(t, tarEntry{name: "etc/", typ: '5', mode: 0o755}, tarEntry{name: "etc/hello", body: "hello"}),
		mkTar(t, tarEntry{name: "bin/", typ: '5', mode: 0o755}, tarEntry{name: "bin/tool", body: strings.Repeat("x", 100000), mode: 0o755}))
	ref := mustRef(t, host+"/test/app:v1")
	var out bytes.Buffer
	res, err := c.Push(ctx, src, ref, nil, PushOptions{Progress: NewProgress(&out)})
	if err != nil {
		t.Fatal(err)
	}
	wantDigest, _ := src.Digest()
	if res.Digest != wantDigest {
		t.Fatalf("pushed digest %s, want the view's %s", res.Digest, wantDigest)
	}
	for _, want := range []string{`"status":"Preparing"`, `"status":"Pushed"`, `v1: digest: ` + wantDigest.String()} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("push stream lacks %s:\n%s", want, out.String())
		}
	}
	out.Reset()
	pr, err := c.Pull(ctx, store, ref, PullOptions{Progress: NewProgress(&out)})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := src.ConfigName()
	if pr.Image.ID != id || pr.Digest != wantDigest || pr.Image.ManifestDigest != wantDigest {
		t.Fatalf("pulled id %s digest %s manifest %s; want %s %s", pr.Image.ID, pr.Digest, pr.Image.ManifestDigest, id, wantDigest)
	}
	if want := ref.Name() + "@" + wantDigest.String(); len(pr.Image.RepoDigests) != 1 || pr.Image.RepoDigests[0] != want {
		t.Fatalf("RepoDigests %v, want [%s]", pr.Image.RepoDigests, want)
	}
	for _, want := range []string{"Pulling from test/app", "Pulling fs layer", "Download complete", "Pull complete", "Digest: " + wantDigest.String(), "Status: Downloaded newer image for " + host + "/test/app:v1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("pull stream lacks %q:\n%s", want, out.String())
		}
	}
	// Pulling again downloads nothing.
	out.Reset()
	pr, err = c.Pull(ctx, store, ref, PullOptions{Progress: NewProgress(&out)})
	if err != nil {
		t.Fatal(err)
	}
	if !pr.UpToDate || !strings.Contains(out.String(), "Image is up to date") || strings.Contains(out.String(), "Downloading") {
		t.Fatalf("second pull not up to date: %v\n%s", pr.UpToDate, out.String())
	}
	// Pushing the stored image elsewhere keeps the manifest byte for byte,
	// and mounts the layers from the repository it came from.
	local, err := store.View(ctx, pr.Image.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	res2, err := c.Push(ctx, local, mustRef(t, host+"/other/app:v2"), store, PushOptions{Progress: NewProgress(&out), MountFrom: pr.Image.RepoDigests})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Digest != wantDigest {
		t.Fatalf("re-push digest %s, want %s", res2.Digest, wantDigest)
	}
	if !strings.Contains(out.String(), "Mounted from test/app") {
		t.Errorf("no cross-repository mount:\n%s", out.String())
	}
	// Pinned pull by digest.
	store2, _ := newStore(t)
	pr, err = c.Pull(ctx, store2, mustRef(t, host+"/other/app@"+wantDigest.String()), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Image.ID != id || len(pr.Image.RepoTags) != 0 {
		t.Fatalf("pinned pull: id %s tags %v", pr.Image.ID, pr.Image.RepoTags)
	}
}

func TestPushCompressesUncompressedLayers(t *testing.T) {
	ctx := context.Background()
	host := newRegistry(t, anonymous, nil)
	c := newClient(t)
	store, _ := newStore(t)
	// An imported image is stored uncompressed: push gzips it.
	src := testImage(t, hostArch(), false, mkTar(t, tarEntry{name: "data", body: strings.Repeat("berth ", 50000)}))
	img, err := store.Put(ctx, src, imagePutRef(host+"/src/img:1"))
	if err != nil {
		t.Fatal(err)
	}
	view, err := store.View(ctx, img.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ref := mustRef(t, host+"/dst/img:1")
	res, err := c.Push(ctx, view, ref, store, PushOptions{Progress: NewProgress(&out)})
	if err != nil {
		t.Fatal(err)
	}
	store2, _ := newStore(t)
	pr, err := c.Pull(ctx, store2, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Image.ID != img.ID || pr.Digest != res.Digest {
		t.Fatalf("pulled %s/%s, want %s/%s", pr.Image.ID, pr.Digest, img.ID, res.Digest)
	}
	m, _ := func() (any, error) { v, _ := store2.View(ctx, pr.Image.ID.String()); return v.Manifest() }()
	if !strings.Contains(toJSON(m), "tar+gzip") {
		t.Fatalf("pushed layer not gzip: %s", toJSON(m))
	}
	// The second push finds the compressed layer in the registry without compressing.
	out.Reset()
	res2, err := c.Push(ctx, view, ref, store, PushOptions{Progress: NewProgress(&out)})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Digest != res.Digest || !strings.Contains(out.String(), "Layer already exists") {
		t.Fatalf("second push: %s vs %s\n%s", res2.Digest, res.Digest, out.String())
	}
}

func TestPullNotFound(t *testing.T) {
	host := newRegistry(t, anonymous, nil)
	store, _ := newStore(t)
	_, err := newClient(t).Pull(context.Background(), store, mustRef(t, host+"/no/such:1"), PullOptions{})
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "manifest for "+host+"/no/such:1 not found") {
		t.Fatalf("err = %v", err)
	}
}
