package buildcontext

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

func names(t *testing.T, data []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.Name)
	}
	sort.Strings(out)
	return out
}

func write(t *testing.T, dir string, files ...string) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWriteHonoursDockerignore(t *testing.T) {
	cases := []struct {
		name   string
		ignore string
		want   []string
	}{
		{"none", "", []string{".dockerignore", "Dockerfile", "a.txt", "node_modules/", "node_modules/m.js", "src/", "src/keep.go", "src/x.log"}},
		{"dir and glob", "node_modules\n**/*.log\n", []string{".dockerignore", "Dockerfile", "a.txt", "src/", "src/keep.go"}},
		{"exception", "*.txt\nsrc\n!src/keep.go\n", []string{".dockerignore", "Dockerfile", "node_modules/", "node_modules/m.js", "src/keep.go"}},
		{"dockerfile kept", "Dockerfile\n.dockerignore\n", []string{".dockerignore", "Dockerfile", "a.txt", "node_modules/", "node_modules/m.js", "src/", "src/keep.go", "src/x.log"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "Dockerfile", "a.txt", "node_modules/m.js", "src/keep.go", "src/x.log")
			os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(c.ignore), 0o644)
			ex, err := ReadIgnore(dir)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := Write(&buf, dir, Options{Excludes: ex, Keep: []string{"Dockerfile", ".dockerignore"}}); err != nil {
				t.Fatal(err)
			}
			got := names(t, buf.Bytes())
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("got %v\nwant %v", got, c.want)
			}
		})
	}
}

// TestWriteLargeIgnoredTreeIsFast: an excluded directory with tens of
// thousands of files is skipped without being walked.
func TestWriteLargeIgnoredTreeIsFast(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "Dockerfile")
	for i := 0; i < 200; i++ {
		d := filepath.Join(dir, "node_modules", fmt.Sprintf("p%d", i))
		os.MkdirAll(d, 0o755)
		for j := 0; j < 100; j++ {
			os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d.js", j)), nil, 0o644)
		}
	}
	start := time.Now()
	var buf bytes.Buffer
	if err := Write(&buf, dir, Options{Excludes: []string{"node_modules", "**/*.log"}}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("20000 ignored files took %v", d)
	}
	if got := names(t, buf.Bytes()); len(got) != 1 {
		t.Errorf("got %v", got)
	}
	// Unignored, the same tree is sent whole.
	start = time.Now()
	buf.Reset()
	if err := Write(&buf, dir, Options{Excludes: []string{"**/*.log"}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("20000 files packed in %v", time.Since(start))
	if got := names(t, buf.Bytes()); len(got) != 1+1+200+20000 {
		t.Errorf("%d entries", len(got))
	}
}
