package image

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash tests re-run this test binary as a child that imports in a loop
// (or from stdin) and kill -9 it at some point; the store must reopen clean.
func init() {
	root := os.Getenv("BERTH_IMAGE_CRASH_CHILD")
	if root == "" {
		return
	}
	ctx := context.Background()
	s, err := Open(ctx, root, nil)
	if err != nil {
		os.Exit(3)
	}
	if os.Getenv("BERTH_IMAGE_CRASH_STDIN") != "" {
		s.Import(ctx, os.Stdin, ImportOptions{Ref: "half"})
		os.Exit(0)
	}
	raw, err := os.ReadFile(filepath.Join(root, "..", "layer.tar"))
	if err != nil {
		os.Exit(4)
	}
	for i := 0; ; i++ {
		// Vary the layer so each import unpacks and installs something new.
		layer := append(append([]byte(nil), raw[:len(raw)-1024]...), mkTar(nil, tentry{name: "n", body: strings.Repeat("x", i) + strconv.Itoa(os.Getpid()), typ: '0'})...)
		img, err := s.Import(ctx, bytes.NewReader(layer), ImportOptions{Ref: "loop"})
		if err != nil {
			os.Exit(5)
		}
		if i%2 == 1 {
			s.Delete(ctx, img.ID.String(), true, false, nil)
		}
	}
}

func crashChild(t *testing.T, root string, stdin bool) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BERTH_IMAGE_CRASH_CHILD="+root)
	if stdin {
		cmd.Env = append(cmd.Env, "BERTH_IMAGE_CRASH_STDIN=1")
	}
	return cmd
}

// checkConsistent asserts that every image is complete and nothing
// unrecorded is left on disk.
func checkConsistent(t *testing.T, root string) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range list {
		v := mustView(t, s, img.ID.String())
		rc, err := v.layer0().Uncompressed()
		if err != nil {
			t.Fatalf("image %s: layer blob: %v", img.ID, err)
		}
		n, _ := io.Copy(io.Discard, rc)
		rc.Close()
		if n == 0 {
			t.Fatalf("image %s: empty layer", img.ID)
		}
		for _, d := range chainIDs(img.Config.RootFS.DiffIDs) {
			if _, err := os.Stat(filepath.Join(root, "overlay", d.Encoded(), "diff", "bin", "busybox")); err != nil {
				t.Fatalf("image %s: snapshot: %v", img.ID, err)
			}
		}
	}
	if n := countDirs(t, filepath.Join(root, "content/ingest")); n != 0 {
		t.Errorf("%d ingest files left", n)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "overlay"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "tmp-") {
			t.Errorf("temporary snapshot %s left", e.Name())
		}
	}
	t.Logf("after kill: %d images, %d snapshots", len(list), len(entries))
	if len(entries) != len(list) {
		t.Errorf("%d snapshot dirs for %d single-layer images", len(entries), len(list))
	}
}

func TestKillDuringImport(t *testing.T) {
	raw := busyboxTar(t)
	base := t.TempDir()
	root := filepath.Join(base, "store")
	os.WriteFile(filepath.Join(base, "layer.tar"), raw, 0o644)

	// Killed while the tarball is only half sent.
	cmd := crashChild(t, root, true)
	w, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Write(raw[:len(raw)/2])
	deadline := time.Now().Add(5 * time.Second)
	for countIngest(root) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	checkConsistent(t, root)

	// Killed at random moments of an import/delete loop.
	for i := 0; i < 4; i++ {
		cmd := crashChild(t, root, false)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if cmd.ProcessState.ExitCode() > 0 {
			t.Fatalf("child failed before the kill: exit %d", cmd.ProcessState.ExitCode())
		}
		checkConsistent(t, root)
	}
}

func countIngest(root string) int {
	e, _ := os.ReadDir(filepath.Join(root, "content/ingest"))
	return len(e)
}
