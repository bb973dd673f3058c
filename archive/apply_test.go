package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// ent is a compact tar entry description for tests.
type ent struct {
	name, link, body string
	typ              byte
	mode             int64
	xattrs           map[string]string
}

func file(name, body string) ent { return ent{name: name, body: body, typ: tar.TypeReg, mode: 0o644} }
func dir(name string) ent        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) ent {
	return ent{name: name, link: target, typ: tar.TypeSymlink, mode: 0o777}
}
func hardlink(name, target string) ent {
	return ent{name: name, link: target, typ: tar.TypeLink, mode: 0o644}
}

var testTime = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, ModTime: testTime, Size: int64(len(e.body))}
		for k, v := range e.xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox makes base/{root,outside/sentinel} and returns root and a check
// that fails the test if anything outside root changed.
func sandbox(t testing.TB) (root string, check func()) {
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sentinel := filepath.Join(outside, "sentinel")
	if err := os.WriteFile(sentinel, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, func() {
		t.Helper()
		names := listTree(t, base, root)
		want := []string{"outside", "outside/sentinel", "root"}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Fatalf("entries outside the root changed: %v", names)
		}
		b, err := os.ReadFile(sentinel)
		fi, _ := os.Lstat(sentinel)
		if err != nil || string(b) != "keep" || fi.Mode() != 0o644 {
			t.Fatalf("sentinel outside the root changed: %q %v %v", b, fi.Mode(), err)
		}
	}
}

// listTree lists paths under base relative to it, not descending into skip.
func listTree(t testing.TB, base, skip string) []string {
	var names []string
	filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == base {
			return nil
		}
		rel, _ := filepath.Rel(base, p)
		names = append(names, filepath.ToSlash(rel))
		if p == skip {
			return filepath.SkipDir
		}
		return nil
	})
	sort.Strings(names)
	return names
}

func TestApplyHostile(t *testing.T) {
	tests := []struct {
		name    string
		ents    func(outside string) []ent
		wantErr bool
		inside  []string // paths that must exist inside root afterwards
	}{
		{"dotdot", func(string) []ent { return []ent{file("../outside/pwned", "x")} }, true, nil},
		{"dotdot-middle", func(string) []ent { return []ent{file("a/../../outside/pwned", "x")} }, true, nil},
		{"absolute-name", func(o string) []ent { return []ent{file(o+"/pwned", "x")} }, false, []string{"OUT/pwned"}},
		{"relative-symlink-parent", func(string) []ent {
			return []ent{symlink("l", "../outside"), file("l/pwned", "x")}
		}, false, []string{"outside/pwned"}},
		{"absolute-symlink-parent", func(o string) []ent {
			return []ent{symlink("l", o), file("l/pwned", "x")}
		}, false, []string{"OUT/pwned"}},
		{"symlink-chain", func(o string) []ent {
			return []ent{symlink("a", "b/../../../.."), symlink("b", "."), file("a/tmp/pwned", "x")}
		}, false, []string{"tmp/pwned"}},
		{"symlink-overwritten-by-file", func(o string) []ent {
			return []ent{symlink("s", o+"/sentinel"), file("s", "new")}
		}, false, []string{"s"}},
		{"hardlink-out", func(string) []ent { return []ent{hardlink("h", "../outside/sentinel")} }, true, nil},
		{"hardlink-absolute", func(o string) []ent { return []ent{hardlink("h", o+"/sentinel")} }, true, nil},
		{"hardlink-via-symlink-dir", func(o string) []ent {
			return []ent{symlink("d", o), hardlink("h", "d/sentinel")}
		}, true, nil},
		{"hardlink-to-symlink-then-write", func(o string) []ent {
			return []ent{symlink("s", o+"/sentinel"), hardlink("h", "s"), file("h", "new")}
		}, false, []string{"h", "s"}},
		{"symlink-loop", func(string) []ent {
			return []ent{symlink("a", "b"), symlink("b", "a"), file("a/x", "x")}
		}, true, nil},
		{"root-as-symlink", func(o string) []ent { return []ent{symlink("./", o)} }, true, nil},
		{"whiteout-dotdot", func(string) []ent { return []ent{file("a/.wh...", "")} }, true, nil},
		{"whiteout-through-symlink", func(o string) []ent {
			return []ent{symlink("l", o), file("l/.wh.sentinel", "")}
		}, false, nil},
		{"opaque-through-symlink", func(o string) []ent {
			return []ent{symlink("l", "../outside"), file("l/.wh..wh..opq", "")}
		}, false, nil},
	}
	for _, parallel := range []int{0, 4} {
		for _, tt := range tests {
			tt := tt
			t.Run(fmt.Sprintf("%s/parallel=%d", tt.name, parallel), func(t *testing.T) {
				applyHostile(t, tt.ents, tt.wantErr, tt.inside, parallel)
			})
		}
	}
}

// applyHostile applies one hostile archive and checks that nothing
// escaped the sandbox.
func applyHostile(t *testing.T, ents func(string) []ent, wantErr bool, inside []string, parallel int) {
	root, check := sandbox(t)
	outside := filepath.Join(filepath.Dir(root), "outside")
	_, err := ApplyTar(context.Background(), root, bytes.NewReader(mkTar(t, ents(outside)...)), ApplyOptions{Parallel: parallel})
	if (err != nil) != wantErr {
		t.Fatalf("err = %v, want error %v", err, wantErr)
	}
	check()
	for _, p := range inside {
		p = strings.Replace(p, "OUT", outside, 1)
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("expected %s inside root: %v", p, err)
		}
	}
}

// Parallel file creation gives the same tree as applying in order, also
// for archives that write a path twice, link to files just written,
// replace files by directories and white out what they wrote.
func TestApplyParallelSameTree(t *testing.T) {
	var ents []ent
	for d := 0; d < 5; d++ {
		ents = append(ents, dir(fmt.Sprintf("d%d", d)))
		for f := 0; f < 40; f++ {
			ents = append(ents, file(fmt.Sprintf("d%d/f%d", d, f), strings.Repeat(fmt.Sprint(d, f), 100*f)))
		}
	}
	ents = append(ents,
		file("d0/f1", "rewritten"), hardlink("d1/link", "d1/f3"), file("d2/f4", "again"),
		dir("d3/f5"), file("d3/f5/inner", "x"), file("d4/.wh.f6", ""), symlink("d0/sym", "f2"),
		file("big", strings.Repeat("b", 300<<10)), hardlink("d0/f7", "big"))
	in := mkTar(t, ents...)
	describe := func(root string) []string {
		var out []string
		for _, rel := range listTree(t, root, "") {
			p := filepath.Join(root, rel)
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			line := fmt.Sprintf("%s %v", rel, fi.Mode())
			switch {
			case fi.Mode().IsRegular():
				b, _ := os.ReadFile(p)
				line += fmt.Sprintf(" %d %x", len(b), sha256.Sum256(b))
			case fi.Mode()&os.ModeSymlink != 0:
				l, _ := os.Readlink(p)
				line += " -> " + l
			}
			out = append(out, line)
		}
		return out
	}
	serial, parallel := t.TempDir(), t.TempDir()
	if _, err := ApplyTar(context.Background(), serial, bytes.NewReader(in), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := ApplyTar(context.Background(), parallel, bytes.NewReader(in), ApplyOptions{Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	a, b := describe(serial), describe(parallel)
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("trees differ:\nserial:\n%s\nparallel:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	if st.Entries != len(ents) {
		t.Fatalf("stats say %d entries, archive has %d", st.Entries, len(ents))
	}
}

func TestApplyMetadata(t *testing.T) {
	root := t.TempDir()
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "ro"), 0o755) }) // lets a non-root cleanup remove it
	ex := file("bin/tool", "#!/bin/sh\n")
	ex.mode = 0o4755
	ro := dir("ro")
	ro.mode = 0o555
	x := file("x", "data")
	x.xattrs = map[string]string{"user.test": "v1"}
	st, err := ApplyTar(context.Background(), root, bytes.NewReader(mkTar(t,
		dir("bin"), ex, ro, file("ro/inner", "i"), x, symlink("bin/sh", "/bin/tool"),
		hardlink("bin/tool2", "bin/tool"), ent{name: "fifo", typ: tar.TypeFifo, mode: 0o600},
	)), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 8 || st.Size != int64(len("#!/bin/sh\n")+1+4) {
		t.Errorf("stats = %+v", st)
	}
	checks := []struct {
		path  string
		mode  os.FileMode
		mtime bool
	}{
		{"bin/tool", 0o755 | os.ModeSetuid, true},
		{"ro", 0o555 | os.ModeDir, true},
		{"ro/inner", 0o644, true},
		{"bin/sh", 0o777 | os.ModeSymlink, true},
		{"fifo", 0o600 | os.ModeNamedPipe, true},
		{"bin", 0o755 | os.ModeDir, true},
	}
	for _, c := range checks {
		fi, err := os.Lstat(filepath.Join(root, c.path))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.mode {
			t.Errorf("%s mode = %v, want %v", c.path, fi.Mode(), c.mode)
		}
		if c.mtime && !fi.ModTime().Equal(testTime) {
			t.Errorf("%s mtime = %v, want %v", c.path, fi.ModTime(), testTime)
		}
	}
	a, _ := os.Stat(filepath.Join(root, "bin/tool"))
	b, _ := os.Stat(filepath.Join(root, "bin/tool2"))
	if !os.SameFile(a, b) {
		t.Error("hard link not shared")
	}
	buf := make([]byte, 16)
	n, err := unix.Lgetxattr(filepath.Join(root, "x"), "user.test", buf)
	if err != nil || string(buf[:n]) != "v1" {
		t.Errorf("xattr = %q, %v", buf[:n], err)
	}
}

func TestApplyWhiteoutsPlain(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	if _, err := ApplyTar(ctx, root, bytes.NewReader(mkTar(t, dir("a"), file("a/1", "1"), file("a/2", "2"), file("b", "b"), dir("c"), file("c/old", "o"))), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ApplyTar(ctx, root, bytes.NewReader(mkTar(t, file("a/.wh.1", ""), file(".wh.b", ""), dir("c"), file("c/.wh..wh..opq", ""), file("c/new", "n"))), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	got := listTree(t, root, "")
	want := "a,a/2,c,c/new"
	if strings.Join(got, ",") != want {
		t.Errorf("tree = %v, want %s", got, want)
	}
}

func TestApplyWhiteoutsOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("overlay whiteouts need root (trusted.* xattrs)")
	}
	root := t.TempDir()
	if _, err := ApplyTar(context.Background(), root, bytes.NewReader(mkTar(t, dir("c"), file("c/.wh..wh..opq", ""), file(".wh.gone", ""))), ApplyOptions{Overlay: true}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout not a 0:0 char device: %+v %v", st, err)
	}
	if !isOpaque(filepath.Join(root, "c")) {
		t.Error("c not opaque")
	}
}

func TestApplyOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	root := t.TempDir()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o2755, Uid: 1234, Gid: 5678})
	tw.WriteHeader(&tar.Header{Name: "null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3})
	tw.Close()
	if _, err := ApplyTar(context.Background(), root, &buf, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Lstat(filepath.Join(root, "f"), &st)
	if st.Uid != 1234 || st.Gid != 5678 || st.Mode&0o7777 != 0o2755 {
		t.Errorf("f: uid %d gid %d mode %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	unix.Lstat(filepath.Join(root, "null"), &st)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("null: mode %o rdev %d", st.Mode, st.Rdev)
	}
}

func TestDecompress(t *testing.T) {
	raw := mkTar(t, file("hello", "world"))
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(raw)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(raw)
	zw.Close()
	for name, in := range map[string][]byte{"plain": raw, "gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			if _, err := Apply(context.Background(), root, bytes.NewReader(in), ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(root, "hello")); err != nil || string(b) != "world" {
				t.Fatalf("hello = %q, %v", b, err)
			}
		})
	}
	_, _, err := Decompress(bytes.NewReader([]byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}))
	if !errors.Is(err, ErrUnsupportedCompression) {
		t.Errorf("xz: err = %v", err)
	}
}

func TestApplyCorrupt(t *testing.T) {
	raw := mkTar(t, file("a", strings.Repeat("x", 2000)))
	for name, in := range map[string][]byte{
		"truncated": raw[:1000],
		"garbage":   bytes.Repeat([]byte("not a tar "), 100),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ApplyTar(context.Background(), t.TempDir(), bytes.NewReader(in), ApplyOptions{}); err == nil {
				t.Fatal("corrupt archive applied without error")
			}
		})
	}
}

func TestTarRoundTrip(t *testing.T) {
	src := t.TempDir()
	ex := file("bin/tool", "#!/bin/sh\n")
	ex.mode = 0o755
	in := mkTar(t, dir("bin"), ex, hardlink("bin/tool2", "bin/tool"), symlink("sh", "bin/tool"), dir("empty"))
	if _, err := ApplyTar(context.Background(), src, bytes.NewReader(in), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var out1, out2 bytes.Buffer
	if err := Tar(context.Background(), &out1, src); err != nil {
		t.Fatal(err)
	}
	Tar(context.Background(), &out2, src)
	if !bytes.Equal(out1.Bytes(), out2.Bytes()) {
		t.Error("Tar output is not deterministic")
	}
	dst := t.TempDir()
	if _, err := ApplyTar(context.Background(), dst, &out1, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if a, b := listTree(t, src, ""), listTree(t, dst, ""); strings.Join(a, ",") != strings.Join(b, ",") {
		t.Errorf("round trip: %v != %v", a, b)
	}
	a, _ := os.Stat(filepath.Join(dst, "bin/tool"))
	b, _ := os.Stat(filepath.Join(dst, "bin/tool2"))
	if !os.SameFile(a, b) || a.Mode() != 0o755 {
		t.Errorf("hard link or mode lost: %v", a.Mode())
	}
}

func TestDiffOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("overlay mounts need root")
	}
	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		os.Mkdir(d, 0o755)
	}
	if _, err := ApplyTar(context.Background(), lower, bytes.NewReader(mkTar(t, dir("etc"), file("etc/a", "a"), file("etc/b", "b"), dir("opq"), file("opq/x", "x"))), ApplyOptions{Overlay: true}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			unix.Unmount(merged, unix.MNT_DETACH)
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(merged, "etc/a")))
	must(os.WriteFile(filepath.Join(merged, "etc/c"), []byte("c"), 0o644))
	must(os.RemoveAll(filepath.Join(merged, "opq")))
	must(os.Mkdir(filepath.Join(merged, "opq"), 0o755))
	must(os.WriteFile(filepath.Join(merged, "opq/y"), []byte("y"), 0o644))
	must(unix.Unmount(merged, 0))

	var buf bytes.Buffer
	if err := Diff(context.Background(), &buf, upper, []string{lower}); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, hdr.Name)
	}
	want := "etc/,etc/.wh.a,etc/c,opq/,opq/.wh..wh..opq,opq/y"
	if strings.Join(names, ",") != want {
		t.Fatalf("diff = %v, want %s", names, want)
	}
	// Applying lower then the diff in plain mode gives the merged view.
	flat := t.TempDir()
	ApplyTar(context.Background(), flat, bytes.NewReader(mkTar(t, dir("etc"), file("etc/a", "a"), file("etc/b", "b"), dir("opq"), file("opq/x", "x"))), ApplyOptions{})
	tr2 := bytes.NewBuffer(nil)
	Diff(context.Background(), tr2, upper, nil)
	if _, err := ApplyTar(context.Background(), flat, tr2, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(listTree(t, flat, ""), ","); got != "etc,etc/b,etc/c,opq,opq/y" {
		t.Errorf("flattened = %s", got)
	}
}
