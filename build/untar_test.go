package build

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tarOf(t *testing.T, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Linkname))
			data := h.Linkname
			h.Linkname = ""
			tw.WriteHeader(h)
			tw.Write([]byte(data))
			continue
		}
		tw.WriteHeader(h)
	}
	tw.Close()
	return buf.Bytes()
}

func TestUntarContext(t *testing.T) {
	ok := tarOf(t,
		&tar.Header{Name: "a/b/c.txt", Typeflag: tar.TypeReg, Mode: 0o640, Linkname: "hello"},
		&tar.Header{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o750},
		&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
		&tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: "a/b/c.txt"},
	)
	dir := t.TempDir()
	if err := untarContext(context.Background(), bytes.NewReader(ok), dir); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "hard")); string(data) != "hello" {
		t.Errorf("hard link content %q", data)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "a/b/c.txt")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
	bad := []struct {
		name string
		tar  []byte
		want string
	}{
		{"dotdot", tarOf(t, &tar.Header{Name: "../x", Typeflag: tar.TypeReg, Linkname: "x"}), "invalid name"},
		{"through symlink", tarOf(t,
			&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/tmp"},
			&tar.Header{Name: "l/evil", Typeflag: tar.TypeReg, Linkname: "x"}), "is not a directory"},
		{"hard link out", tarOf(t, &tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}), "not an earlier file"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			err := untarContext(context.Background(), bytes.NewReader(c.tar), t.TempDir())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func FuzzUntarContext(f *testing.F) {
	f.Add(tarOfF(&tar.Header{Name: "a/b", Typeflag: tar.TypeReg, Linkname: "x"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		untarContext(context.Background(), bytes.NewReader(data), dir)
		// Nothing may appear outside dir: the parent holds only dir.
		ents, _ := os.ReadDir(filepath.Dir(dir))
		for _, e := range ents {
			if filepath.Join(filepath.Dir(dir), e.Name()) != dir {
				t.Fatalf("entry %s written outside the context dir", e.Name())
			}
		}
	})
}

func tarOfF(h *tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := h.Linkname
	h.Linkname, h.Size = "", int64(len(data))
	tw.WriteHeader(h)
	tw.Write([]byte(data))
	tw.Close()
	return buf.Bytes()
}
