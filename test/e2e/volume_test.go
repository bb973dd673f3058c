package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func uniq(prefix string) string { return prefix + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) }

// Data in a named volume outlives its containers and a daemon killed
// with -9; a volume in use cannot be removed.
func TestVolumeDataSurvives(t *testing.T) {
	e := need(t)
	vol := uniq("data")
	e.ok(t, "volume", "create", vol)
	defer e.docker(t, "", "volume", "rm", "-f", vol)
	e.ok(t, "run", "--rm", "-v", vol+":/data", "busybox", "sh", "-c", "echo kept > /data/f")
	if got := e.ok(t, "run", "--rm", "-v", vol+":/data:ro", "busybox", "cat", "/data/f"); got != "kept\n" {
		t.Fatalf("second container reads %q, want \"kept\\n\"", got)
	}
	if r := e.docker(t, "", "run", "--rm", "-v", vol+":/data:ro", "busybox", "touch", "/data/x"); r.code == 0 {
		t.Fatal("a read-only volume mount was writable")
	}
	holder := strings.TrimSpace(e.ok(t, "run", "-d", "-v", vol+":/data", "busybox", "sleep", "60"))
	defer e.docker(t, "", "rm", "-f", holder)
	r := e.docker(t, "", "volume", "rm", vol)
	if r.code == 0 || !strings.Contains(r.stderr, "volume is in use") {
		t.Fatalf("removing a volume in use: %s", r)
	}
	e.daemon.Process.Kill()
	e.daemon.Wait()
	e.daemon = nil
	if err := e.startDaemon(); err != nil {
		t.Fatal(err)
	}
	if got := e.ok(t, "exec", holder, "cat", "/data/f"); got != "kept\n" {
		t.Fatalf("after daemon kill -9 the running container reads %q", got)
	}
	e.ok(t, "rm", "-f", holder)
	if got := e.ok(t, "run", "--rm", "-v", vol+":/data", "busybox", "cat", "/data/f"); got != "kept\n" {
		t.Fatalf("after daemon kill -9 a new container reads %q", got)
	}
	e.ok(t, "volume", "rm", vol)
	if out := e.ok(t, "volume", "ls", "-q"); strings.Contains(out, vol) {
		t.Fatalf("removed volume still listed: %q", out)
	}
}

// An image's VOLUME becomes an anonymous volume filled from the image;
// rm -v removes it; a named volume gets the image's content on first use
// unless nocopy.
func TestVolumeCopyUpAndAnonymous(t *testing.T) {
	e := need(t)
	root := t.TempDir()
	tarball, err := busyboxTar()
	if err != nil {
		t.Fatal(err)
	}
	img := uniq("volimg")
	// The busybox image plus an /etc/app owned by 1000 with a file, as a VOLUME.
	e.ok(t, "import", "--change", "VOLUME /etc/app", writeTarball(t, root, withAppDir(t, tarball)), img+":filled")
	defer e.docker(t, "", "rmi", img+":filled")

	before := strings.Fields(e.ok(t, "volume", "ls", "-q"))
	name := uniq("anon")
	if got := e.ok(t, "run", "--name", name, img+":filled", "sh", "-c", "cat /etc/app/conf; stat -c %u /etc/app"); got != "conf\n1000\n" {
		t.Fatalf("anonymous volume content %q, want the image's file and owner", got)
	}
	mounts := e.ok(t, "inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Destination}} {{.Driver}}{{end}}", name)
	if strings.TrimSpace(mounts) != "volume /etc/app local" {
		t.Fatalf("inspect Mounts: %q", mounts)
	}
	if after := strings.Fields(e.ok(t, "volume", "ls", "-q")); len(after) != len(before)+1 {
		t.Fatalf("volumes before %d, after run %d: want one anonymous volume more", len(before), len(after))
	}
	e.ok(t, "rm", "-v", name)
	if after := strings.Fields(e.ok(t, "volume", "ls", "-q")); len(after) != len(before) {
		t.Fatalf("rm -v left the anonymous volume: %d volumes, want %d", len(after), len(before))
	}

	vol := uniq("named")
	defer e.docker(t, "", "volume", "rm", "-f", vol, vol+"-nc")
	if got := e.ok(t, "run", "--rm", "-v", vol+":/etc/app", img+":filled", "cat", "/etc/app/conf"); got != "conf\n" {
		t.Fatalf("named volume not filled from the image: %q", got)
	}
	if got := e.ok(t, "run", "--rm", "-v", vol+"-nc:/etc/app:nocopy", img+":filled", "ls", "-A", "/etc/app"); got != "" {
		t.Fatalf("nocopy volume got the image's content: %q", got)
	}
}

// --volumes-from, --mount (volume, tmpfs, bind) and --tmpfs, with their errors.
func TestVolumeMountForms(t *testing.T) {
	e := need(t)
	vol := uniq("shared")
	src := uniq("src")
	e.ok(t, "run", "-d", "--name", src, "-v", vol+":/shared", "busybox", "sh", "-c", "echo from-src > /shared/f; sleep 60")
	defer e.docker(t, "", "volume", "rm", "-f", vol)
	defer e.docker(t, "", "rm", "-f", src)
	time.Sleep(200 * time.Millisecond)
	if got := e.ok(t, "run", "--rm", "--volumes-from", src+":ro", "busybox", "sh", "-c", "cat /shared/f; touch /shared/x 2>/dev/null || echo ro"); got != "from-src\nro\n" {
		t.Fatalf("--volumes-from: %q", got)
	}
	if got := e.ok(t, "ps", "--filter", "volume="+vol, "--format", "{{.Names}}"); strings.TrimSpace(got) != src {
		t.Fatalf("ps --filter volume: %q", got)
	}
	if got := e.ok(t, "run", "--rm", "--mount", "type=volume,source="+vol+",target=/m,readonly", "busybox", "cat", "/m/f"); got != "from-src\n" {
		t.Fatalf("--mount type=volume: %q", got)
	}
	got := e.ok(t, "run", "--rm", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m", "--tmpfs", "/u:size=2m", "busybox", "sh", "-c", "grep -E ' /(t|u) ' /proc/mounts | cut -d' ' -f2,3,4")
	if !strings.Contains(got, "/t tmpfs") || !strings.Contains(got, "size=1024k") || !strings.Contains(got, "/u tmpfs") || !strings.Contains(got, "size=2048k") {
		t.Fatalf("tmpfs mounts: %q", got)
	}
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "h"), []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := e.ok(t, "run", "--rm", "--mount", "type=bind,source="+host+",target=/h", "busybox", "cat", "/h/h"); got != "host\n" {
		t.Fatalf("--mount type=bind: %q", got)
	}
	r := e.docker(t, "", "run", "--rm", "--mount", "type=bind,source="+host+"/missing,target=/h", "busybox", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "bind source path does not exist") {
		t.Fatalf("--mount of a missing host path: %s", r)
	}
	// -v of a missing host path creates it, as Docker does.
	e.ok(t, "run", "--rm", "-v", host+"/made/here:/x", "busybox", "true")
	if _, err := os.Stat(filepath.Join(host, "made", "here")); err != nil {
		t.Fatalf("-v did not create the missing host path: %v", err)
	}
	for _, bad := range [][]string{
		{"-v", "rel:dst"}, {"-v", "/a:/b:bogus"}, {"-v", "/a:/"}, {"-v", "x/y:/d"},
		{"-v", vol + ":/d", "-v", host + ":/d"},
	} {
		r := e.docker(t, "", append(append([]string{"run", "--rm"}, bad...), "busybox", "true")...)
		if r.code != 125 {
			t.Errorf("run %v: %s, want a refusal (125)", bad, r)
		}
	}
}

// withAppDir returns the rootfs tarball with /etc/app/conf added, owned by 1000.
func withAppDir(t *testing.T, rootfs []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(bytes.NewReader(rootfs))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []*tar.Header{
		{Name: "etc/app/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 1000, Gid: 1000},
		{Name: "etc/app/conf", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1000, Gid: 1000, Size: 5},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("conf\n"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// writeTarball writes data under dir and returns the path.
func writeTarball(t *testing.T, dir string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
