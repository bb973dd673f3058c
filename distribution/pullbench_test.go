package distribution

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestPullTiming pulls BERTH_PULL_REF (a loopback registry image) into a
// fresh store and reports the time; for profiling pulls by hand.
func TestPullTiming(t *testing.T) {
	ref := os.Getenv("BERTH_PULL_REF")
	if ref == "" {
		t.Skip("set BERTH_PULL_REF to time a pull")
	}
	s, _ := openStore(t)
	start := time.Now()
	if _, err := New(Options{}).Pull(context.Background(), s, ref, PullOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("pull %s: %v", ref, time.Since(start))
}
