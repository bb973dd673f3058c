package containerfs

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/errdefs"
)

func TestResolveStaysInside(t *testing.T) {
	root := t.TempDir()
	host := t.TempDir()
	bind := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root"), 0o644)
	os.Symlink("/", filepath.Join(root, "up"))
	os.Symlink("../../../../"+host, filepath.Join(root, "rel"))
	os.Symlink("/etc/passwd", filepath.Join(root, "abs"))
	os.WriteFile(filepath.Join(bind, "data"), []byte("bound"), 0o644)
	f := FS{Root: root, Name: "c", Mounts: []Mount{{Source: bind, Dest: "/mnt/b"}}}
	cases := []struct {
		path       string
		followLast bool
		want       string
	}{
		{"/etc/passwd", false, filepath.Join(root, "etc/passwd")},
		{"/up/etc/passwd", false, filepath.Join(root, "etc/passwd")},
		{"/../../etc/passwd", false, filepath.Join(root, "etc/passwd")},
		{"/rel/x", false, filepath.Join(root, host, "x")},
		{"/abs", false, filepath.Join(root, "abs")},
		{"/abs", true, filepath.Join(root, "etc/passwd")},
		{"/mnt/b/data", false, filepath.Join(bind, "data")},
		{"/mnt/b", false, bind},
		{"/", false, root},
	}
	for _, tc := range cases {
		got, _, err := f.resolve(tc.path, tc.followLast)
		if err != nil || got != tc.want {
			t.Errorf("resolve(%q, %v) = %q, %v; want %q", tc.path, tc.followLast, got, err, tc.want)
		}
	}
}

func TestStatArchiveExtract(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dir/sub"), 0o755)
	os.WriteFile(filepath.Join(root, "dir/sub/f"), []byte("content"), 0o640)
	os.Symlink("sub/f", filepath.Join(root, "dir/link"))
	f := FS{Root: root, Name: "ctr"}
	st, err := f.Stat("/dir/link")
	if err != nil || st.LinkTarget != "/dir/sub/f" || st.Name != "link" {
		t.Fatalf("stat link: %+v %v", st, err)
	}
	if _, err := f.Stat("/nope"); !errdefs.IsNotFound(err) || err.Error() != "Could not find the file /nope in container ctr" {
		t.Fatalf("stat missing: %v", err)
	}
	rc, _, err := f.Archive(context.Background(), "/dir")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	rc.Close()
	want := []string{"dir/", "dir/link", "dir/sub/", "dir/sub/f"}
	if len(names) != len(want) {
		t.Fatalf("archive names %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("archive names %v, want %v", names, want)
		}
	}
	// Extraction: a hostile entry is refused, a normal one lands.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "new.txt", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi"))
	tw.Close()
	if err := f.Extract(context.Background(), "/dir", &buf, false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "dir/new.txt")); string(b) != "hi" {
		t.Fatalf("extracted %q", b)
	}
	buf.Reset()
	tw = tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "../../escape", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	f.Extract(context.Background(), "/dir", &buf, false)
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "escape")); err == nil {
		t.Fatal("extraction escaped the directory")
	}
	if err := f.Extract(context.Background(), "/dir/sub/f", &buf, false); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("extract into a file: %v", err)
	}
	ro := FS{Root: root, ReadOnly: true}
	if err := ro.Extract(context.Background(), "/dir", bytes.NewReader(nil), false); err == nil {
		t.Fatal("extract into a read-only root succeeded")
	}
}
