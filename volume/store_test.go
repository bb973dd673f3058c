package volume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/sys/mountinfo"
)

func TestStoreLifecycle(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, created, err := s.Create(ctx, CreateOptions{Name: "data", Labels: map[string]string{"a": "b"}})
	if err != nil || !created {
		t.Fatalf("Create = %v, %v", created, err)
	}
	if v.Mountpoint != filepath.Join(root, "data", "_data") {
		t.Fatalf("Mountpoint = %s", v.Mountpoint)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Same name again: the existing volume, not an error.
	if v2, created, err := s.Create(ctx, CreateOptions{Name: "data", Ref: "c1"}); err != nil || created || v2 != v {
		t.Fatalf("second Create = %v, %v, %v", v2, created, err)
	}
	if err := s.Remove(ctx, "data", false); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "volume is in use - [c1]") {
		t.Fatalf("Remove in use: %v", err)
	}
	if err := s.Remove(ctx, "data", true); !errdefs.IsConflict(err) {
		t.Fatalf("force Remove in use: %v", err)
	}
	anon, _, err := s.Create(ctx, CreateOptions{Labels: map[string]string{AnonymousLabel: ""}})
	if err != nil || len(anon.Name) != 64 || !anon.Anonymous() {
		t.Fatalf("anonymous Create = %+v, %v", anon, err)
	}

	// A fresh store (a restarted daemon) sees the same volumes and data.
	s2, err := Open(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(s2.List()); got != 2 {
		t.Fatalf("reopened store lists %d volumes", got)
	}
	v3, err := s2.Get("data")
	if err != nil || v3.Labels["a"] != "b" || !v3.CreatedAt.Equal(v.CreatedAt) {
		t.Fatalf("reopened Get = %+v, %v", v3, err)
	}
	if b, _ := os.ReadFile(filepath.Join(v3.Mountpoint, "f")); string(b) != "hello" {
		t.Fatalf("data lost: %q", b)
	}
	if n, err := Size(v3.Mountpoint); err != nil || n != 5 {
		t.Fatalf("Size = %d, %v", n, err)
	}
	// References are the daemon's to restore; unreferenced, it goes.
	s.Unref("data", "c1")
	if err := s2.Remove(ctx, "data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "data")); !os.IsNotExist(err) {
		t.Fatalf("volume dir left: %v", err)
	}
	if _, err := s2.Get("data"); !errdefs.IsNotFound(err) {
		t.Fatalf("Get removed: %v", err)
	}
	if err := s2.Remove(ctx, "data", false); !errdefs.IsNotFound(err) {
		t.Fatalf("Remove missing: %v", err)
	}
	if err := s2.Remove(ctx, "data", true); err != nil {
		t.Fatalf("force Remove missing: %v", err)
	}
}

func TestStoreRefs(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s.Create(ctx, CreateOptions{Name: "v"})
	if err := s.Ref("missing", "c"); !errdefs.IsNotFound(err) {
		t.Fatalf("Ref missing = %v", err)
	}
	s.Ref("v", "c1")
	s.Ref("v", "c2")
	s.Ref("v", "c1")
	if n := s.RefCount("v"); n != 2 {
		t.Fatalf("RefCount = %d, want 2", n)
	}
	s.Unref("v", "c1")
	s.Unref("v", "c1")
	if got := s.Users("v"); len(got) != 1 || got[0] != "c2" {
		t.Fatalf("Users = %v", got)
	}
	s.Unref("v", "c2")
	if err := s.Remove(ctx, "v", false); err != nil {
		t.Fatal(err)
	}
}

func TestStoreBadInput(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		o     CreateOptions
		check func(error) bool
		msg   string
	}{
		{CreateOptions{Name: "bad/name"}, errdefs.IsInvalidParameter, "includes invalid characters"},
		{CreateOptions{Name: ".hidden"}, errdefs.IsInvalidParameter, "includes invalid characters"},
		{CreateOptions{Name: "x", Driver: "nfs"}, errdefs.IsNotFound, `plugin "nfs" not found`},
		{CreateOptions{Name: "x", Options: map[string]string{"foo": "bar"}}, errdefs.IsInvalidParameter, `invalid option: "foo"`},
		{CreateOptions{Name: "x", Options: map[string]string{"type": "tmpfs"}}, errdefs.IsInvalidParameter, `missing required option: "device"`},
		{CreateOptions{Name: "x", Options: map[string]string{"o": "size=1m"}}, errdefs.IsInvalidParameter, "missing required option"},
		{CreateOptions{Name: "x", Options: map[string]string{"type": "none", "device": "rel", "o": "bind"}}, errdefs.IsInvalidParameter, "absolute"},
	}
	for _, tc := range cases {
		_, _, err := s.Create(ctx, tc.o)
		if err == nil || !tc.check(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Create(%+v) error = %v, want %q", tc.o, err, tc.msg)
		}
	}
	if len(s.List()) != 0 {
		t.Fatalf("failed creates left volumes: %v", s.List())
	}
}

// A removal cut by a crash leaves the volume in the trash; the next Open
// finishes it, and a create cut before its metadata leaves a plain volume.
func TestStoreCrashRecovery(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, trashDir, "old-1234", "_data", "sub"), 0o755)
	os.MkdirAll(filepath.Join(root, "bare", "_data"), 0o755)
	os.WriteFile(filepath.Join(root, "torn", metaFile), []byte("{"), 0o600)
	s, err := Open(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, trashDir, "old-1234")); !os.IsNotExist(err) {
		t.Fatalf("trash not emptied: %v", err)
	}
	if v, err := s.Get("bare"); err != nil || v.Driver != LocalDriver {
		t.Fatalf("bare volume: %+v, %v", v, err)
	}
}

func TestCopyUp(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(src, "d", "e"), 0o750)
	os.WriteFile(filepath.Join(src, "d", "f"), []byte("content"), 0o640)
	os.Link(filepath.Join(src, "d", "f"), filepath.Join(src, "hard"))
	os.Symlink("/etc/passwd", filepath.Join(src, "link"))
	os.Chmod(src, 0o711)
	if err := CopyUp(src, dst); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "d", "f")); err != nil || string(b) != "content" {
		t.Fatalf("file: %q %v", b, err)
	}
	fi, _ := os.Stat(filepath.Join(dst, "d", "f"))
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o711 {
		t.Fatalf("root mode %v, want the source's 0711", fi.Mode())
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "/etc/passwd" {
		t.Fatalf("symlink copied as %q, %v", l, err)
	}
	a, _ := os.Stat(filepath.Join(dst, "hard"))
	if !os.SameFile(a, fi) {
		t.Fatalf("hard link not kept")
	}
	// A volume with content is never overwritten.
	os.WriteFile(filepath.Join(src, "new"), []byte("x"), 0o644)
	if err := CopyUp(src, dst); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, "new")); !os.IsNotExist(err) {
		t.Fatalf("non-empty volume was populated again")
	}
	if err := CopyUp(filepath.Join(src, "missing"), t.TempDir()); err != nil {
		t.Fatalf("missing source: %v", err)
	}
}

// Root: tmpfs- and bind-backed volumes are mounted for their first user
// and unmounted after the last; removing a bind-backed volume leaves its
// device's files alone.
func TestBackedVolumesMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	ctx := context.Background()
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	dev := t.TempDir()
	os.WriteFile(filepath.Join(dev, "keep"), []byte("precious"), 0o644)
	tv, _, err := s.Create(ctx, CreateOptions{Name: "tv", Options: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0700"}})
	if err != nil {
		t.Fatal(err)
	}
	bv, _, err := s.Create(ctx, CreateOptions{Name: "bv", Options: map[string]string{"type": "none", "device": dev, "o": "bind,ro"}})
	if err != nil {
		t.Fatal(err)
	}
	mounted := func(p string) bool { m, err := mountinfo.Mounted(p); return err == nil && m }
	for _, v := range []*Volume{tv, bv} {
		if mounted(v.Mountpoint) {
			t.Fatalf("%s mounted before use", v.Name)
		}
		p1, err := s.Activate(v.Name, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Activate(v.Name, "c2"); err != nil {
			t.Fatal(err)
		}
		if !mounted(p1) {
			t.Fatalf("%s not mounted on first use", v.Name)
		}
		s.Deactivate(v.Name, "c1")
		if !mounted(p1) {
			t.Fatalf("%s unmounted while c2 uses it", v.Name)
		}
		s.Deactivate(v.Name, "c2")
		if mounted(p1) {
			t.Fatalf("%s still mounted after the last user", v.Name)
		}
	}
	if fi, err := os.Stat(tv.Mountpoint); err != nil || fi.Mode().Perm() != 0o755 {
		// unmounted: the plain directory again
		t.Fatalf("tmpfs volume dir: %v %v", fi, err)
	}
	p, _ := s.Activate("bv", "c1")
	if b, err := os.ReadFile(filepath.Join(p, "keep")); err != nil || string(b) != "precious" {
		t.Fatalf("bind-backed volume content %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(p, "w"), nil, 0o644); err == nil {
		t.Fatalf("o=bind,ro volume is writable")
	}
	// A crashed daemon leaves the mount; a new store with no active user undoes it.
	s2, _ := Open(s.Root(), nil)
	s2.Reconcile()
	if mounted(p) {
		t.Fatalf("Reconcile left a stale mount")
	}
	if p, _ := s2.Activate("bv", "c3"); !mounted(p) {
		t.Fatalf("bind-backed volume not mounted again")
	}
	// Mounted and unreferenced: removal unmounts before deleting.
	if err := s2.Remove(ctx, "bv", false); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dev, "keep")); err != nil || string(b) != "precious" {
		t.Fatalf("removing a bind-backed volume touched its device: %q %v", b, err)
	}
	s.Remove(ctx, "tv", false)
}
