package daemon

import (
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// parseSignal accepts "SIGTERM", "TERM", "term" or "15".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.InvalidParameterf("Invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	// SIGRTMIN+n forms.
	if rest, ok := strings.CutPrefix(name, "SIGRTMIN+"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && 34+n <= 64 {
			return syscall.Signal(34 + n), nil
		}
	}
	return 0, errdefs.InvalidParameterf("Invalid signal: %s", s)
}
