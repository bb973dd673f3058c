package daemon

import (
	"log/slog"
	"testing"
	"time"

	"github.com/berth-dev/berth/daemon/events"
	"github.com/berth-dev/berth/filters"
	"github.com/moby/moby/api/types/container"
)

func TestParsePS(t *testing.T) {
	out := "UID        PID  PPID  C STIME TTY          TIME CMD\n" +
		"root         1     0  0 17:34 ?        00:00:45 /sbin/init\n" +
		"root       120     1  0 17:35 ?        00:00:00 sh -c while :; do :; done\n" +
		"root       121   120  0 17:35 pts/0    00:00:00 sleep 10\n"
	tests := []struct {
		pids []int
		want [][]string
	}{
		{[]int{120}, [][]string{{"root", "120", "1", "0", "17:35", "?", "00:00:00", "sh -c while :; do :; done"}}},
		{[]int{121, 999}, [][]string{{"root", "121", "120", "0", "17:35", "pts/0", "00:00:00", "sleep 10"}}},
		{nil, [][]string{}},
	}
	for _, tc := range tests {
		r, err := parsePS(out, tc.pids)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Titles) != 8 || len(r.Processes) != len(tc.want) {
			t.Fatalf("pids %v: %+v", tc.pids, r)
		}
		for i := range tc.want {
			for j := range tc.want[i] {
				if r.Processes[i][j] != tc.want[i][j] {
					t.Errorf("pids %v: row %q, want %q", tc.pids, r.Processes[i], tc.want[i])
				}
			}
		}
	}
	if _, err := parsePS("USER COMMAND\nroot x\n", []int{1}); err == nil {
		t.Error("ps output without a PID column accepted")
	}
}

func TestResolveHealth(t *testing.T) {
	tests := []struct {
		in     *container.HealthConfig
		ok     bool
		cmd    []string
		retrie int
	}{
		{nil, false, nil, 0},
		{&container.HealthConfig{Test: []string{"NONE"}}, false, nil, 0},
		{&container.HealthConfig{Test: []string{"CMD", "true", "x"}}, true, []string{"true", "x"}, 3},
		{&container.HealthConfig{Test: []string{"CMD-SHELL", "exit 1"}, Retries: 7}, true, []string{"/bin/sh", "-c", "exit 1"}, 7},
		{&container.HealthConfig{Test: []string{"CMD"}}, false, nil, 0},
	}
	for _, tc := range tests {
		p, ok := resolveHealth(tc.in)
		if ok != tc.ok {
			t.Fatalf("%+v: ok %v", tc.in, ok)
		}
		if !ok {
			continue
		}
		if len(p.cmd) != len(tc.cmd) || p.cmd[len(p.cmd)-1] != tc.cmd[len(tc.cmd)-1] || p.retries != tc.retrie ||
			p.interval != defaultHealthInterval || p.timeout != defaultHealthTimeout {
			t.Errorf("%+v: %+v", tc.in, p)
		}
	}
}

// TestHealthTransitions replays probe results through Docker's rules.
func TestHealthTransitions(t *testing.T) {
	d := &Daemon{log: slog.New(slog.DiscardHandler), events: events.New(), ctr: newCtrService()}
	c := &Container{ID: "c1", Name: "/c1", Config: &container.Config{}, State: State{Status: container.StateRunning}}
	start := time.Now()
	p := healthProbe{retries: 2, startPeriod: time.Second}
	m := &healthMonitor{state: container.Health{Status: container.Starting}}
	d.ctr.health[c.ID] = m
	steps := []struct {
		at     time.Duration
		code   int
		status container.HealthStatus
		streak int
	}{
		{100 * time.Millisecond, 1, container.Starting, 0}, // in the start period: not counted
		{200 * time.Millisecond, 0, container.Healthy, 0},
		{1500 * time.Millisecond, 1, container.Healthy, 1},
		{1600 * time.Millisecond, 1, container.Unhealthy, 2},
		{1700 * time.Millisecond, 2, container.Unhealthy, 3},
		{1800 * time.Millisecond, 0, container.Healthy, 0},
		{1900 * time.Millisecond, 0, container.Healthy, 0},
	}
	for i, s := range steps {
		d.recordHealth(c, m, p, start, &container.HealthcheckResult{Start: start.Add(s.at), ExitCode: s.code})
		h := d.healthState(c)
		if h.Status != s.status || h.FailingStreak != s.streak {
			t.Fatalf("step %d: %s streak %d, want %s streak %d", i, h.Status, h.FailingStreak, s.status, s.streak)
		}
	}
	if h := d.healthState(c); len(h.Log) != maxHealthLog {
		t.Errorf("log keeps %d results, want %d", len(h.Log), maxHealthLog)
	}
	if got := d.healthSuffix(c, c.State); got != " (healthy)" {
		t.Errorf("ps suffix %q", got)
	}
	for value, want := range map[string]bool{"healthy": true, "unhealthy": false, "none": false} {
		ef := filters.Args{}
		ef.Add("health", value)
		if got := d.matchHealth(c, c.State, ef); got != want {
			t.Errorf("health=%s: %v", value, got)
		}
	}
}

// FuzzParsePS feeds ps output of any shape: rows keep the title count and
// only wanted pids come out.
func FuzzParsePS(f *testing.F) {
	f.Add("UID PID PPID C STIME TTY TIME CMD\nroot 7 1 0 10:00 ? 00:00:00 sleep 10 20\n", 7)
	f.Add("PID\n", 1)
	f.Add("", 0)
	f.Fuzz(func(t *testing.T, out string, pid int) {
		r, err := parsePS(out, []int{pid})
		if err != nil {
			return
		}
		for _, p := range r.Processes {
			if len(p) > len(r.Titles) {
				t.Fatalf("row %q longer than titles %q", p, r.Titles)
			}
		}
	})
}
