package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// volumeImage imports busybox plus /seed/f (owned 1234:5678, dir mode
// 0750) under VOLUME /seed: the image of the copy-up and anonymous
// volume tests.
func mineVolumeImage(t *testing.T, e *env, name string) {
	t.Helper()
	base, err := busyboxTar()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(bytes.NewReader(base))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(h)
		io.Copy(tw, tr)
	}
	tw.WriteHeader(&tar.Header{Name: "seed/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1234, Gid: 5678, ModTime: time.Now()})
	tw.WriteHeader(&tar.Header{Name: "seed/f", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1234, Gid: 5678, Size: 5, ModTime: time.Now()})
	tw.Write([]byte("seed\n"))
	tw.Close()
	r := e.docker(t, buf.String(), "import", "-c", `VOLUME ["/seed"]`, "-", name)
	if r.code != 0 {
		t.Fatalf("import: %s", r)
	}
}

func TestVolumeDataSurvivesKill9(t *testing.T) {
	e := need(t)
	if out := e.ok(t, "volume", "create", "--label", "app=e2e", "e2e-data"); out != "e2e-data\n" {
		t.Fatalf("volume create printed %q", out)
	}
	defer e.docker(t, "", "volume", "rm", "-f", "e2e-data")
	if out := e.ok(t, "volume", "ls", "--filter", "label=app=e2e"); out != "DRIVER    VOLUME NAME\nlocal     e2e-data\n" {
		t.Fatalf("volume ls printed %q", out)
	}
	if out := e.ok(t, "volume", "inspect", "-f", "{{.Driver}} {{.Scope}} {{.Labels}}", "e2e-data"); out != "local local map[app:e2e]\n" {
		t.Fatalf("volume inspect printed %q", out)
	}
	// Data written by one container is read by the next, after the first is removed.
	e.ok(t, "run", "--name", "e2e-writer", "-v", "e2e-data:/data", "busybox", "sh", "-c", "echo persisted > /data/f")
	// In use, even by a stopped container: 409 and the volume stays.
	r := e.docker(t, "", "volume", "rm", "e2e-data")
	if r.code == 0 || !strings.Contains(r.stderr, "volume is in use") {
		t.Fatalf("rm of a volume in use: %s", r)
	}
	if out := e.ok(t, "ps", "-a", "--filter", "volume=e2e-data", "--format", "{{.Names}}"); out != "e2e-writer\n" {
		t.Fatalf("ps --filter volume= printed %q", out)
	}
	mounts := e.ok(t, "inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.Driver}} {{.RW}}{{end}}", "e2e-writer")
	if mounts != "volume e2e-data /data local true\n" {
		t.Fatalf("inspect Mounts: %q", mounts)
	}
	e.ok(t, "rm", "e2e-writer")
	if out := e.ok(t, "run", "--rm", "-v", "e2e-data:/data:ro", "busybox", "cat", "/data/f"); out != "persisted\n" {
		t.Fatalf("second container read %q", out)
	}
	r = e.docker(t, "", "run", "--rm", "-v", "e2e-data:/data:ro", "busybox", "touch", "/data/g")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("write to a read-only volume: %s", r)
	}
	// Survives a daemon kill -9 and a restart.
	e.daemon.Process.Kill()
	e.daemon.Wait()
	e.daemon = nil
	if err := e.startDaemon(); err != nil {
		t.Fatal(err)
	}
	if out := e.ok(t, "run", "--rm", "--mount", "type=volume,src=e2e-data,dst=/d,readonly", "busybox", "cat", "/d/f"); out != "persisted\n" {
		t.Fatalf("after daemon kill -9 read %q", out)
	}
	e.ok(t, "volume", "rm", "e2e-data")
	if r := e.docker(t, "", "volume", "inspect", "e2e-data"); r.code == 0 || !strings.Contains(r.stderr, "no such volume") {
		t.Fatalf("inspect removed volume: %s", r)
	}
}

func TestVolumeCopyUpOwnershipAndPrune(t *testing.T) {
	e := need(t)
	mineVolumeImage(t, e, "e2e-volimg")
	defer e.docker(t, "", "rmi", "e2e-volimg")
	// A new named volume is populated from the image, keeping owner and mode.
	defer e.docker(t, "", "volume", "rm", "-f", "e2e-seeded")
	out := e.ok(t, "run", "--rm", "-v", "e2e-seeded:/seed", "e2e-volimg", "sh", "-c", "cat /seed/f; stat -c '%u:%g %a' /seed /seed/f")
	if out != "seed\n1234:5678 750\n1234:5678 640\n" {
		t.Fatalf("copy-up: %q", out)
	}
	// nocopy: left empty.
	defer e.docker(t, "", "volume", "rm", "-f", "e2e-empty")
	if out := e.ok(t, "run", "--rm", "-v", "e2e-empty:/seed:nocopy", "e2e-volimg", "ls", "-A", "/seed"); out != "" {
		t.Fatalf("nocopy volume has %q", out)
	}
	// The image's VOLUME becomes an anonymous volume, populated, and rm -v removes it.
	id := strings.TrimSpace(e.ok(t, "create", "e2e-volimg", "cat", "/seed/f"))
	name := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", id))
	if len(name) != 64 {
		t.Fatalf("anonymous volume name %q", name)
	}
	if out := e.ok(t, "volume", "inspect", "-f", "{{json .Labels}}", name); out != "{\"com.docker.volume.anonymous\":\"\"}\n" {
		t.Fatalf("anonymous volume labels %q", out)
	}
	if out := e.ok(t, "start", "-a", id); out != "seed\n" {
		t.Fatalf("anonymous volume content %q", out)
	}
	// --volumes-from shares it (read-only here) and keeps it in use.
	if r := e.docker(t, "", "run", "--rm", "--volumes-from", id+":ro", "busybox", "sh", "-c", "cat /seed/f; touch /seed/x 2>/dev/null || echo ro"); r.stdout != "seed\nro\n" {
		out := r.String()
		t.Fatalf("--volumes-from: %q", out)
	}
	e.ok(t, "rm", "-v", id)
	if r := e.docker(t, "", "volume", "inspect", name); r.code == 0 {
		t.Fatalf("rm -v left the anonymous volume")
	}
	// prune: anonymous only unless --all.
	e.ok(t, "volume", "create", "e2e-named")
	defer e.docker(t, "", "volume", "rm", "-f", "e2e-named")
	id = strings.TrimSpace(e.ok(t, "create", "e2e-volimg", "true"))
	name = strings.TrimSpace(e.ok(t, "inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", id))
	e.ok(t, "rm", id)
	out = e.ok(t, "volume", "prune", "-f")
	if !strings.Contains(out, name) || strings.Contains(out, "e2e-named") {
		t.Fatalf("volume prune: %q", out)
	}
}

func TestBindTmpfsAndBadSpecs(t *testing.T) {
	e := need(t)
	host := filepath.Join(e.dir, "bind-src")
	// -v creates a missing host directory, as Docker does.
	e.ok(t, "run", "--rm", "-v", host+"/sub:/h", "busybox", "sh", "-c", "echo from-container > /h/f")
	if b, err := os.ReadFile(filepath.Join(host, "sub", "f")); err != nil || string(b) != "from-container\n" {
		t.Fatalf("bind write: %q %v", b, err)
	}
	// --mount refuses it, with Docker's message, creating nothing.
	missing := filepath.Join(e.dir, "no-such-dir")
	r := e.docker(t, "", "run", "--rm", "--mount", "type=bind,src="+missing+",dst=/h", "busybox", "true")
	if r.code != 125 || !strings.Contains(r.stderr, `invalid mount config for type "bind": bind source path does not exist: `+missing) {
		t.Fatalf("--mount of a missing path: %s", r)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("refused --mount created %s", missing)
	}
	if out := e.ok(t, "ps", "-aq", "--filter", "volume=/h"); out != "" {
		t.Fatalf("refused create left a container: %q", out)
	}
	out := e.ok(t, "run", "--rm", "--mount", "type=bind,src="+host+",dst=/h,readonly", "busybox", "sh", "-c", "cat /h/sub/f; touch /h/x 2>/dev/null || echo ro")
	if out != "from-container\nro\n" {
		t.Fatalf("read-only bind: %q", out)
	}
	out = e.ok(t, "run", "--rm", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770", "--tmpfs", "/u:size=2m", "busybox",
		"sh", "-c", "stat -c %a /t; grep -E ' /(t|u) ' /proc/mounts | cut -d' ' -f4")
	if !strings.HasPrefix(out, "1770\n") || !strings.Contains(out, "size=1024k") || !strings.Contains(out, "size=2048k") {
		t.Fatalf("tmpfs options: %q", out)
	}
	// Bad specs are refused at create with 400s.
	for _, bad := range [][]string{
		{"-v", "rel:/a:rx"},
		{"-v", "bad$name:/a"},
		{"-v", "/a:relative"},
		{"--mount", "type=volume,dst=/a,volume-driver=nfs"},
		{"-v", "/x:/same", "-v", "/y:/same"},
	} {
		args := append(append([]string{"create"}, bad...), "busybox")
		if r := e.docker(t, "", args...); r.code == 0 || !strings.Contains(r.stderr, "Error response from daemon") {
			t.Errorf("create %v: %s", bad, r)
		}
	}
}

func TestBackedVolumesKeepDevice(t *testing.T) {
	e := need(t)
	dev := filepath.Join(e.dir, "bind-device")
	os.MkdirAll(dev, 0o755)
	os.WriteFile(filepath.Join(dev, "keep"), []byte("precious"), 0o644)
	e.ok(t, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=3m,uid=1000", "e2e-tmpfs")
	defer e.docker(t, "", "volume", "rm", "-f", "e2e-tmpfs")
	e.ok(t, "volume", "create", "-o", "type=none", "-o", "device="+dev, "-o", "o=bind", "e2e-bindvol")
	out := e.ok(t, "run", "--rm", "-v", "e2e-tmpfs:/t", "-v", "e2e-bindvol:/b", "busybox", "sh", "-c",
		"grep ' /t ' /proc/mounts | cut -d' ' -f3,4; stat -c %u /t; cat /b/keep; echo new > /b/new")
	if out != "tmpfs rw,relatime,size=3072k,uid=1000\n1000\nprecious" {
		t.Fatalf("backed volumes: %q", out)
	}
	e.ok(t, "volume", "rm", "e2e-bindvol")
	if b, err := os.ReadFile(filepath.Join(dev, "new")); err != nil || string(b) != "new\n" {
		t.Fatalf("bind-backed volume's device after rm: %q %v", b, err)
	}
	if r := e.docker(t, "", "volume", "create", "-o", "foo=bar", "e2e-bad"); r.code == 0 || !strings.Contains(r.stderr, "foo") {
		t.Fatalf("bad option: %s", r)
	}
}
