package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snapshot describes a tree: type, mode, size, content hash, link target.
func snapshot(t *testing.T, root string) string {
	var b strings.Builder
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(&b, "%s %v %d", rel, fi.Mode(), fi.Size())
		switch {
		case fi.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", l)
		}
		if !fi.IsDir() {
			fmt.Fprintf(&b, " %d", fi.ModTime().Unix())
		}
		b.WriteByte('\n')
		return nil
	})
	return b.String()
}

// The parallel apply gives the same tree as the sequential one, including
// for archives that rewrite, link, and white out their own files.
func TestApplyParallelMatchesSequential(t *testing.T) {
	var ents []ent
	for i := 0; i < 300; i++ {
		d := fmt.Sprintf("d%d", i%7)
		ents = append(ents, dir(d), file(fmt.Sprintf("%s/f%d", d, i), strings.Repeat(fmt.Sprint(i), i*37)))
	}
	ents = append(ents,
		file("d1/f1", "rewritten"),
		hardlink("d2/hl", "d1/f1"),
		symlink("d3/sl", "../d1/f8"),
		file("d4/.wh.f4", ""),
		file("big", strings.Repeat("x", 2<<20)),
		file("d5/f5", "again"), file("d5/f5", "and again"),
		file("zero", string(make([]byte, 300<<10))),
	)
	tarball := mkTar(t, ents...)
	seq, par := t.TempDir(), t.TempDir()
	if _, err := ApplyTar(context.Background(), seq, bytes.NewReader(tarball), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := ApplyTar(context.Background(), par, bytes.NewReader(tarball), ApplyOptions{Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := snapshot(t, seq), snapshot(t, par); a != b {
		t.Fatalf("parallel apply differs:\nsequential:\n%s\nparallel:\n%s", a, b)
	}
	if st.Entries != len(ents) {
		t.Fatalf("entries %d, want %d", st.Entries, len(ents))
	}
}

func TestApplyParallelHostile(t *testing.T) {
	for _, ents := range [][]ent{
		{file("../outside/pwned", "x")},
		{symlink("l", "../outside"), file("l/pwned", "x")},
		{file("a", "x"), hardlink("h", "../outside/sentinel")},
	} {
		root, check := sandbox(t)
		ApplyTar(context.Background(), root, bytes.NewReader(mkTar(t, ents...)), ApplyOptions{Parallel: 3})
		check()
	}
}
