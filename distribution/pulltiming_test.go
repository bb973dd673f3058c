package distribution

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/api/types/registry"
)

// TestPullTiming pulls BERTH_PULL_REF (e.g. from a loopback registry) into
// a fresh store and logs the time it took: for profiling pulls by hand.
func TestPullTiming(t *testing.T) {
	ref := os.Getenv("BERTH_PULL_REF")
	if ref == "" {
		t.Skip("set BERTH_PULL_REF to time a pull")
	}
	s := openStore(t)
	start := time.Now()
	if _, err := Pull(context.Background(), s, NewClient(Options{}, registry.AuthConfig{}), named(t, ref), PullOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("pull %s: %v", ref, time.Since(start))
}
