package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const alpineTarball = "/work/shared/images/alpine/alpine-minirootfs-3.20.3-x86_64.tar.gz"

func TestImportWithChanges(t *testing.T) {
	e := need(t)
	tarball, err := busyboxTar()
	if err != nil {
		t.Fatal(err)
	}
	r := e.cli(t, dockerBin, string(tarball), "import",
		"-c", "ENV GREETING=hi", "-c", "WORKDIR /tmp", `-c`, `CMD ["sh", "-c", "echo $GREETING from $(pwd)"]`,
		"-c", "LABEL team=berth", "-m", "imported for e2e", "-", "e2e/greeter:v1")
	if r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.stdout), "sha256:") {
		t.Fatalf("import: %s", r)
	}
	defer e.docker(t, "", "rmi", "-f", "e2e/greeter:v1")
	if out := e.ok(t, "run", "--rm", "e2e/greeter:v1"); out != "hi from /tmp\n" {
		t.Fatalf("run imported image: %q", out)
	}
	var insp []struct {
		ID       string
		RepoTags []string
		Comment  string
		Config   struct {
			Env        []string
			Cmd        []string
			WorkingDir string
			Labels     map[string]string
		}
		RootFS struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(e.ok(t, "image", "inspect", "e2e/greeter:v1")), &insp); err != nil || len(insp) != 1 {
		t.Fatalf("image inspect: %v", err)
	}
	img := insp[0]
	if img.Config.WorkingDir != "/tmp" || img.Config.Labels["team"] != "berth" || len(img.RootFS.Layers) != 1 {
		t.Fatalf("image config: %+v", img)
	}
	if !contains(img.Config.Env, "GREETING=hi") || img.Comment != "imported for e2e" {
		t.Fatalf("image env/comment: %+v", img)
	}
	out := e.ok(t, "history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "e2e/greeter:v1")
	if !strings.Contains(out, "imported for e2e") {
		t.Fatalf("history: %q", out)
	}
}

func TestTagListRemove(t *testing.T) {
	e := need(t)
	e.ok(t, "tag", "busybox", "e2e/tagged:one")
	e.ok(t, "tag", "busybox:latest", "e2e/tagged:two")
	out := e.ok(t, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "e2e/tagged")
	if !strings.Contains(out, "e2e/tagged:one") || !strings.Contains(out, "e2e/tagged:two") {
		t.Fatalf("images: %q", out)
	}
	bbID := strings.TrimSpace(e.ok(t, "images", "-q", "busybox"))
	if !strings.Contains(out, bbID) {
		t.Fatalf("tags do not point at busybox %s: %q", bbID, out)
	}
	// Removing a tag of a multiply-tagged image only untags.
	out = e.ok(t, "rmi", "e2e/tagged:one")
	if !strings.Contains(out, "Untagged: e2e/tagged:one") || strings.Contains(out, "Deleted") {
		t.Fatalf("rmi of one tag: %q", out)
	}
	e.ok(t, "rmi", "e2e/tagged:two")
	if e.docker(t, "", "image", "inspect", "busybox").code != 0 {
		t.Fatalf("busybox vanished after removing other tags")
	}
	// An image used by a container cannot be deleted without force.
	e.ok(t, "tag", "busybox", "e2e/inuse:1")
	e.ok(t, "image", "rm", "busybox") // untag only: e2e/inuse:1 still names it
	id := strings.TrimSpace(e.ok(t, "create", "e2e/inuse:1", "true"))
	e.ok(t, "tag", "e2e/inuse:1", "busybox:latest")
	r := e.docker(t, "", "rmi", bbID)
	if r.code == 0 || !strings.Contains(r.stderr, "conflict") {
		t.Fatalf("rmi of an image with several tags by ID: %s", r)
	}
	e.ok(t, "rm", id)
	e.ok(t, "rmi", "e2e/inuse:1")
	r = e.docker(t, "", "rmi", "nosuch:image")
	if r.code == 0 || !strings.Contains(r.stderr, "No such image") {
		t.Fatalf("rmi missing: %s", r)
	}
}

func TestAlpineImage(t *testing.T) {
	e := need(t)
	if !fileExists(alpineTarball) {
		t.Skip("Alpine rootfs not available at " + alpineTarball)
	}
	f, err := os.Open(alpineTarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(dockerBin, "import", "-c", `CMD ["/bin/sh"]`, "-", "alpine:3.20")
	cmd.Env = e.dockerEnv()
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("import alpine: %v\n%s", err, out)
	}
	defer e.docker(t, "", "rmi", "alpine:3.20")
	out := e.ok(t, "run", "--rm", "alpine:3.20", "cat", "/etc/alpine-release")
	if strings.TrimSpace(out) != "3.20.3" {
		t.Fatalf("alpine release: %q", out)
	}
	out = e.ok(t, "run", "--rm", "-u", "nobody", "alpine:3.20", "id")
	if !strings.HasPrefix(out, "uid=65534(nobody)") {
		t.Fatalf("id as nobody: %q", out)
	}
}

func TestBerthCLI(t *testing.T) {
	e := need(t)
	r := e.berthCLI(t, "", "run", "--rm", "busybox", "echo", "from berth")
	if r.code != 0 || r.stdout != "from berth\n" {
		t.Fatalf("berth run: %s", r)
	}
	r = e.berthCLI(t, "", "run", "--rm", "busybox", "sh", "-c", "exit 7")
	if r.code != 7 {
		t.Fatalf("berth run exit code: %s", r)
	}
	r = e.berthCLI(t, "", "images")
	if r.code != 0 || !strings.Contains(r.stdout, "busybox") {
		t.Fatalf("berth images: %s", r)
	}
	r = e.berthCLI(t, "", "ps", "-a")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "CONTAINER ID") {
		t.Fatalf("berth ps: %s", r)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestCorruptImportRefused(t *testing.T) {
	e := need(t)
	before := e.ok(t, "images", "-q", "--no-trunc")
	cases := map[string]string{
		"garbage":   "this is not a tar archive at all, just text",
		"truncated": string(mustTar(t)[:700]),
	}
	for name, data := range cases {
		r := e.docker(t, data, "import", "-", "e2e/corrupt:"+name)
		if r.code == 0 {
			t.Fatalf("import of %s tarball succeeded: %s", name, r)
		}
		if !strings.Contains(r.stderr, "Error response from daemon") {
			t.Fatalf("import of %s tarball: unclear error: %s", name, r)
		}
	}
	if after := e.ok(t, "images", "-q", "--no-trunc"); after != before {
		t.Fatalf("a refused import left an image behind:\nbefore %q\nafter %q", before, after)
	}
}

func mustTar(t *testing.T) []byte {
	t.Helper()
	b, err := busyboxTar()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
