package archive

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// FuzzApplyTar feeds arbitrary archives to ApplyTar and asserts that nothing
// outside the target directory is ever created or changed.
func FuzzApplyTar(f *testing.F) {
	seeds := [][]ent{
		{file("../outside/pwned", "x")},
		{symlink("l", "../outside"), file("l/pwned", "x")},
		{symlink("l", "../../"), dir("l/outside"), file("l/outside/sentinel", "changed")},
		{hardlink("h", "../outside/sentinel"), file("h", "x")},
		{symlink("s", "../outside/sentinel"), hardlink("h", "s"), file("h", "x")},
		{symlink("a", "b/../../.."), symlink("b", "."), file("a/outside/sentinel", "x")},
		{dir("d"), file("d/.wh..wh..opq", ""), file(".wh.d", ""), symlink("d", "..")},
		{symlink("./", "..")},
		{file("a", "x"), hardlink("b", "a"), symlink("c", "/"), file("c/outside/sentinel", "x")},
	}
	for _, s := range seeds {
		f.Add(mkTar(f, s...), false)
		f.Add(mkTar(f, s...), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, overlay bool) {
		root, check := sandbox(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		// Half the inputs (by length) go through parallel file creation.
		ApplyTar(ctx, root, bytes.NewReader(data), ApplyOptions{Overlay: overlay, Parallel: 4 * (len(data) % 2)})
		check()
	})
}
