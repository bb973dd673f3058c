package e2e

import (
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startRegistry runs `berth registry serve` on a free loopback port and
// returns its host:port.
func startRegistry(t *testing.T, e *env) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(e.berth, "registry", "serve", "--addr", addr, "--root", filepath.Join(t.TempDir(), "registry"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("registry did not start")
	return ""
}

// The main workflow: push to berth's own registry, remove, pull back, run;
// the image ID and the manifest digest survive.
func TestPushPullThroughRegistry(t *testing.T) {
	e := need(t)
	reg := startRegistry(t, e)
	root := t.TempDir()
	tarball, err := busyboxTar()
	if err != nil {
		t.Fatal(err)
	}
	// A layer of its own, so that the pull really downloads it.
	ref := reg + "/e2e/app:v1"
	e.ok(t, "import", "--change", `CMD ["cat","/etc/app/conf"]`, writeTarball(t, root, withAppDir(t, tarball)), ref)
	id := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.Id}}", ref))
	out := e.ok(t, "push", ref)
	if !strings.Contains(out, "Pushed") || !strings.Contains(out, "v1: digest: sha256:") {
		t.Fatalf("push output:\n%s", out)
	}
	pushedDigest := out[strings.Index(out, "sha256:"):][:71]
	e.ok(t, "rmi", ref)
	if r := e.docker(t, "", "inspect", ref); r.code == 0 {
		t.Fatal("image still present after rmi")
	}
	out = e.ok(t, "pull", ref)
	if !strings.Contains(out, "Pull complete") || !strings.Contains(out, "Digest: "+pushedDigest) {
		t.Fatalf("pull output:\n%s", out)
	}
	if got := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.Id}}", ref)); got != id {
		t.Fatalf("pulled image ID %s, pushed %s", got, id)
	}
	if got := e.ok(t, "inspect", "-f", "{{index .RepoDigests 0}}", ref); strings.TrimSpace(got) != reg+"/e2e/app@"+pushedDigest {
		t.Fatalf("RepoDigests %q, want %s@%s", got, reg+"/e2e/app", pushedDigest)
	}
	if got := e.ok(t, "run", "--rm", ref); got != "conf\n" {
		t.Fatalf("pulled image runs and prints %q", got)
	}
	// By digest, and through berth's own CLI.
	e.ok(t, "pull", reg+"/e2e/app@"+pushedDigest)
	if r := e.berthCLI(t, "", "pull", ref); r.code != 0 || !strings.Contains(r.stdout, "Image is up to date") {
		t.Fatalf("berth pull: %s", r)
	}
	e.ok(t, "rmi", ref)
	// A missing image is a plain error.
	if r := e.docker(t, "", "pull", reg+"/e2e/none:v1"); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("pull of a missing image: %s", r)
	}
}

// save and load round-trip through berth, and images move between berth
// and Docker's own daemon both ways; prune and export work.
func TestSaveLoadExport(t *testing.T) {
	e := need(t)
	root := t.TempDir()
	tarball, err := busyboxTar()
	if err != nil {
		t.Fatal(err)
	}
	ref := uniq("saved") + ":v1"
	e.ok(t, "import", "--change", `CMD ["cat","/etc/app/conf"]`, writeTarball(t, root, withAppDir(t, tarball)), ref)
	id := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.Id}}", ref))
	archivePath := filepath.Join(root, "saved.tar")
	e.ok(t, "save", "-o", archivePath, ref)
	e.ok(t, "rmi", ref)
	out := e.ok(t, "load", "-i", archivePath)
	if !strings.Contains(out, "Loaded image: "+ref) {
		t.Fatalf("load output %q", out)
	}
	if got := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.Id}}", ref)); got != id {
		t.Fatalf("loaded image ID %s, saved %s", got, id)
	}
	if got := e.ok(t, "run", "--rm", ref); got != "conf\n" {
		t.Fatalf("loaded image prints %q", got)
	}
	// export: the container's files as a tar.
	cid := strings.TrimSpace(e.ok(t, "create", ref))
	exp := filepath.Join(root, "export.tar")
	e.ok(t, "export", "-o", exp, cid)
	e.ok(t, "rm", cid)
	list, err := exec.Command("tar", "tf", exp).Output()
	if err != nil || !strings.Contains(string(list), "etc/app/conf") {
		t.Fatalf("export lacks etc/app/conf (%v)", err)
	}
	// A corrupt archive is refused and loads nothing.
	before := e.ok(t, "images", "-q")
	if r := e.docker(t, "", "load", "-i", exp); r.code == 0 {
		t.Fatalf("loading a non-image tar succeeded: %s", r)
	}
	if after := e.ok(t, "images", "-q"); after != before {
		t.Fatalf("a failed load changed the image list:\n%s\n%s", before, after)
	}

	d := startDockerd(t)
	if r := d.run(t, "", "load", "-i", archivePath); r.code != 0 {
		t.Fatalf("dockerd loads berth's archive: %s", r)
	}
	if r := d.run(t, "", "run", "--rm", ref); r.code != 0 || r.stdout != "conf\n" {
		t.Fatalf("berth's image in dockerd: %s", r)
	}
	dockerRef := uniq("fromdocker") + ":1"
	d.run(t, "", "tag", ref, dockerRef)
	dockerArchive := filepath.Join(root, "docker.tar")
	if r := d.run(t, "", "save", "-o", dockerArchive, dockerRef); r.code != 0 {
		t.Fatalf("docker save: %s", r)
	}
	if out := e.ok(t, "load", "-i", dockerArchive); !strings.Contains(out, "Loaded image: "+dockerRef) {
		t.Fatalf("berth load of docker's archive: %q", out)
	}
	if got := e.ok(t, "run", "--rm", dockerRef); got != "conf\n" {
		t.Fatalf("docker's image in berth prints %q", got)
	}
	e.ok(t, "rmi", ref, dockerRef)
	e.ok(t, "image", "prune", "-f")
}
