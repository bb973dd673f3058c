package image

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// BenchmarkRootfsCycle measures the image store's share of `run --rm`:
// create (record + mount) and remove (unmount + delete) a container rootfs.
func BenchmarkRootfsCycle(b *testing.B) {
	if testing.Short() {
		b.Skip("short")
	}
	ctx := context.Background()
	s, _ := newStore(b)
	img, err := s.Import(ctx, bytes.NewReader(busyboxTar(b)), ImportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cid := fmt.Sprintf("bench%d", i)
		if _, err := s.CreateRootfs(ctx, cid, img); err != nil {
			b.Fatal(err)
		}
		if err := s.RemoveRootfs(ctx, cid); err != nil {
			b.Fatal(err)
		}
	}
}
