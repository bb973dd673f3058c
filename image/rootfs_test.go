package image

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("overlay mounts need root")
	}
}

func TestRootfsLifecycle(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	s, root := newStore(t)
	base, err := s.Import(ctx, bytes.NewReader(busyboxTar(t)), ImportOptions{Ref: "base"})
	if err != nil {
		t.Fatal(err)
	}
	layer := mkTar(t, tentry{name: "etc/.wh.passwd", typ: tar.TypeReg}, tentry{name: "tmp/.wh..wh..opq", typ: tar.TypeReg}, tentry{name: "hello", body: "hi\n", typ: tar.TypeReg})
	child, err := s.Commit(ctx, CommitOptions{Parent: base.ID, Layer: bytes.NewReader(layer)})
	if err != nil {
		t.Fatal(err)
	}
	const cid = "c0ffee"
	merged, err := s.CreateRootfs(ctx, cid, child)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.UnmountRootfs(ctx, cid) })
	if _, err := os.Stat(filepath.Join(merged, "etc/passwd")); !os.IsNotExist(err) {
		t.Errorf("whited-out file visible: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(merged, "hello")); string(b) != "hi\n" {
		t.Errorf("hello = %q", b)
	}
	// The rootfs really runs busybox.
	out, err := exec.Command("chroot", merged, "/bin/sh", "-c", "echo ok; ls /").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok\n") {
		t.Errorf("chroot sh: %q %v", out, err)
	}
	if err := os.WriteFile(filepath.Join(merged, "data"), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	rw, total, err := s.RootfsSize(ctx, cid)
	if err != nil || rw != 4096 || total != 4096+child.Size {
		t.Errorf("RootfsSize = %d, %d, %v (image %d)", rw, total, err, child.Size)
	}
	// Mount is idempotent; unmount then mount keeps the writable layer.
	if again, err := s.MountRootfs(ctx, cid); err != nil || again != merged {
		t.Fatalf("MountRootfs again: %s %v", again, err)
	}
	if err := s.UnmountRootfs(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if m, _ := mountinfo.Mounted(merged); m {
		t.Fatal("still mounted")
	}
	if err := s.UnmountRootfs(ctx, cid); err != nil {
		t.Errorf("second unmount: %v", err)
	}
	// Restarting the store keeps the rootfs.
	s.Close()
	s, err = Open(ctx, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.MountRootfs(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(merged, "data")); err != nil {
		t.Errorf("writable layer lost: %v", err)
	}
	// Deleting the image while the container exists keeps its layers.
	if _, err := s.Delete(ctx, child.ID.String(), true, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "base", true, false, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(merged, "hello")); string(b) != "hi\n" {
		t.Errorf("layer of running container collected: %q", b)
	}
	if err := s.RemoveRootfs(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if n := countDirs(t, filepath.Join(root, "overlay")); n != 0 {
		t.Errorf("%d dirs left in overlay/ after removing the last user", n)
	}
	if err := s.RemoveRootfs(ctx, cid); err != nil {
		t.Errorf("second remove: %v", err)
	}
	if _, err := s.MountRootfs(ctx, "unknown"); err == nil {
		t.Error("mount of unknown rootfs succeeded")
	}
}

func TestRootfsManyLayers(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	s, _ := newStore(t)
	img, err := s.Import(ctx, bytes.NewReader(busyboxTar(t)), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Enough layers that the mount(2) options no longer fit a page.
	for i := 0; i < 45; i++ {
		l := mkTar(t, tentry{name: "layer", body: strings.Repeat("x", i), typ: tar.TypeReg})
		if img, err = s.Commit(ctx, CommitOptions{Parent: img.ID, Layer: bytes.NewReader(l)}); err != nil {
			t.Fatal(err)
		}
	}
	merged, err := s.CreateRootfs(ctx, "many", img)
	if err != nil {
		t.Fatal(err)
	}
	defer s.RemoveRootfs(ctx, "many")
	if b, err := os.ReadFile(filepath.Join(merged, "layer")); err != nil || len(b) != 44 {
		t.Errorf("top layer not visible: %d %v", len(b), err)
	}
}

func TestPutMultiLayerMount(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	s, _ := newStore(t)
	img, err := s.Put(ctx, threeLayers(t, false), PutOptions{Ref: "three"})
	if err != nil {
		t.Fatal(err)
	}
	merged, err := s.CreateRootfs(ctx, "three", img)
	if err != nil {
		t.Fatal(err)
	}
	defer s.RemoveRootfs(ctx, "three")
	if b, _ := os.ReadFile(filepath.Join(merged, "f")); string(b) != "2" {
		t.Errorf("f = %q, want the top layer's", b)
	}
	if _, err := os.Stat(filepath.Join(merged, "g")); !os.IsNotExist(err) {
		t.Errorf("g not deleted by the top layer's whiteout: %v", err)
	}
}

func TestDiffRootfsAndCommit(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	s, _ := newStore(t)
	base, err := s.Import(ctx, bytes.NewReader(busyboxTar(t)), ImportOptions{Ref: "base"})
	if err != nil {
		t.Fatal(err)
	}
	merged, err := s.CreateRootfs(ctx, "work", base)
	if err != nil {
		t.Fatal(err)
	}
	defer s.RemoveRootfs(ctx, "work")
	os.Remove(filepath.Join(merged, "etc/passwd"))
	os.WriteFile(filepath.Join(merged, "added"), []byte("new"), 0o600)
	var layer bytes.Buffer
	if err := s.DiffRootfs(ctx, "work", &layer); err != nil {
		t.Fatal(err)
	}
	child, err := s.Commit(ctx, CommitOptions{Parent: base.ID, Layer: &layer, CreatedBy: "commit"})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := s.CreateRootfs(ctx, "check", child)
	if err != nil {
		t.Fatal(err)
	}
	defer s.RemoveRootfs(ctx, "check")
	if _, err := os.Stat(filepath.Join(m2, "etc/passwd")); !os.IsNotExist(err) {
		t.Errorf("deleted file back in committed image: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(m2, "added")); err != nil || fi.Mode() != 0o600 {
		t.Errorf("added file: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(m2, "bin/busybox")); err != nil {
		t.Errorf("base content missing: %v", err)
	}
}
