package daemon

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
)

// parseTimestamp accepts Docker's time forms: unix seconds (with optional
// fraction), RFC 3339 dates, and durations ("10m") counted back from now.
func parseTimestamp(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if sec, frac, ok := strings.Cut(s, "."); ok || isDigits(s) {
		if isDigits(sec) && (frac == "" || isDigits(frac)) {
			secs, _ := strconv.ParseInt(sec, 10, 64)
			var nanos int64
			if frac != "" {
				f := (frac + "000000000")[:9]
				nanos, _ = strconv.ParseInt(f, 10, 64)
			}
			return time.Unix(secs, nanos), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid timestamp %q", s)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// parseSize reads a log-opt size such as "10m"; 0 when unset or invalid.
func parseSize(s string) int64 {
	if s == "" {
		return 0
	}
	n, err := units.RAMInBytes(s)
	if err != nil {
		return 0
	}
	return n
}

func parseCount(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// exitCodeFor maps a failed start to the exit code Docker records.
func exitCodeFor(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return 126
	}
	return 128
}
