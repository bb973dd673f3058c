package daemon

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestShouldRestart(t *testing.T) {
	cases := []struct {
		name      string
		policy    container.RestartPolicy
		exit      int
		count     int
		stopped   bool
		canceled  bool
		onRestore bool
		want      bool
	}{
		{"no", container.RestartPolicy{Name: "no"}, 1, 0, false, false, false, false},
		{"empty", container.RestartPolicy{}, 1, 0, false, false, false, false},
		{"always ok exit", container.RestartPolicy{Name: "always"}, 0, 0, false, false, false, true},
		{"always stopped", container.RestartPolicy{Name: "always"}, 0, 0, true, true, false, false},
		{"always stopped daemon start", container.RestartPolicy{Name: "always"}, 0, 0, true, false, true, true},
		{"unless-stopped", container.RestartPolicy{Name: "unless-stopped"}, 0, 0, false, false, false, true},
		{"unless-stopped stopped daemon start", container.RestartPolicy{Name: "unless-stopped"}, 0, 0, true, false, true, false},
		{"on-failure 0", container.RestartPolicy{Name: "on-failure"}, 0, 0, false, false, false, false},
		{"on-failure 1", container.RestartPolicy{Name: "on-failure"}, 1, 100, false, false, false, true},
		{"on-failure max reached", container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}, 1, 2, false, false, false, false},
		{"on-failure under max", container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}, 1, 1, false, false, false, true},
		{"killed (canceled)", container.RestartPolicy{Name: "on-failure"}, 137, 0, true, true, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Container{HostConfig: &container.HostConfig{RestartPolicy: tc.policy}, RestartCount: tc.count}
			c.Restart.ManuallyStopped, c.Restart.canceled = tc.stopped, tc.canceled
			if got := c.shouldRestart(tc.exit, time.Second, tc.onRestore); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if tc.want && c.RestartCount != tc.count+1 {
				t.Fatalf("RestartCount %d, want %d", c.RestartCount, tc.count+1)
			}
		})
	}
}

func TestRestartBackoff(t *testing.T) {
	c := &Container{HostConfig: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "always"}}}
	var got []time.Duration
	for i := 0; i < 12; i++ {
		c.shouldRestart(0, time.Second, false)
		got = append(got, c.Restart.delay)
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delay %d = %v, want %v ms (all: %v)", i, got[i], want[i], got)
		}
	}
	// A run of 10 s or more resets the back-off.
	c.shouldRestart(0, 10*time.Second, false)
	if c.Restart.delay != 100*time.Millisecond {
		t.Fatalf("after a long run: %v", c.Restart.delay)
	}
}
