package daemon

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/container"
)

func TestParseTimestamp(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"1700000000", time.Unix(1700000000, 0), false},
		{"1700000000.5", time.Unix(1700000000, 500000000), false},
		{"10m", now.Add(-10 * time.Minute), false},
		{"2026-11-22T10:00:00Z", time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), false},
		{"yesterday", time.Time{}, true},
		{"12.x", time.Time{}, true},
	}
	for _, tc := range cases {
		got, err := parseTimestamp(tc.in, now)
		if (err != nil) != tc.bad {
			t.Errorf("parseTimestamp(%q) error = %v, want bad=%v", tc.in, err, tc.bad)
			continue
		}
		if !tc.bad && !got.Equal(tc.want) {
			t.Errorf("parseTimestamp(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseSignal(t *testing.T) {
	cases := map[string]syscall.Signal{
		"SIGTERM": syscall.SIGTERM, "term": syscall.SIGTERM, "9": syscall.SIGKILL, "KILL": syscall.SIGKILL,
		"SIGRTMIN+3": syscall.Signal(37), "usr1": syscall.SIGUSR1,
	}
	for in, want := range cases {
		got, err := parseSignal(in)
		if err != nil || got != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "65", "SIGNOPE", "-1"} {
		if _, err := parseSignal(bad); !errdefs.IsInvalidParameter(err) {
			t.Errorf("parseSignal(%q) error = %v, want invalid parameter", bad, err)
		}
	}
}

func TestExitCodeFor(t *testing.T) {
	cases := map[string]int{
		`exec: "nosuch": executable file not found in $PATH`: 127,
		"open /x: no such file or directory":                 127,
		"exec /etc/passwd: permission denied":                126,
		"cgroup: out of memory":                              128,
	}
	for msg, want := range cases {
		if got := exitCodeFor(errString(msg)); got != want {
			t.Errorf("exitCodeFor(%q) = %d, want %d", msg, got, want)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"PATH=/bin", "A=1"}, []string{"A=2", "B=3"})
	want := "PATH=/bin A=2 B=3"
	if strings.Join(got, " ") != want {
		t.Fatalf("mergeEnv = %v, want %s", got, want)
	}
}

func TestStatusLine(t *testing.T) {
	now := time.Now()
	cases := []struct {
		st   State
		want string
	}{
		{State{Status: container.StateCreated}, "Created"},
		{State{Status: container.StateRunning, StartedAt: now.Add(-3 * time.Minute)}, "Up 3 minutes"},
		{State{Status: container.StateExited, ExitCode: 137, FinishedAt: now.Add(-5 * time.Second)}, "Exited (137) 5 seconds ago"},
	}
	for _, tc := range cases {
		if got := statusLine(tc.st); got != tc.want {
			t.Errorf("statusLine(%+v) = %q, want %q", tc.st, got, tc.want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	if got := commandLine("sh", []string{"-c", "echo hi"}); got != `sh -c "echo hi"` {
		t.Fatalf("commandLine = %s", got)
	}
}

func TestValidateHostConfig(t *testing.T) {
	cases := []struct {
		hc container.HostConfig
		ok bool
	}{
		{container.HostConfig{}, true},
		{container.HostConfig{NetworkMode: "none"}, true},
		{container.HostConfig{NetworkMode: "container:x"}, true}, // checked against the containers at create
		{container.HostConfig{Resources: container.Resources{Memory: 1024}}, false},
		{container.HostConfig{AutoRemove: true, RestartPolicy: container.RestartPolicy{Name: "always"}}, false},
		{container.HostConfig{LogConfig: container.LogConfig{Type: "syslog"}}, false},
	}
	for i, tc := range cases {
		err := validateHostConfig(&tc.hc)
		if (err == nil) != tc.ok {
			t.Errorf("case %d: validateHostConfig error = %v, want ok=%v", i, err, tc.ok)
		}
		if err != nil && !errdefs.IsInvalidParameter(err) {
			t.Errorf("case %d: error %v is not an invalid-parameter error", i, err)
		}
	}
}
