package compose

import (
	"fmt"
	"io"
	"sync"
)

// progress prints docker compose v2's resource events: on a terminal only
// the outcome (" ✔ Container p-web-1  Started"), otherwise every step, as
// compose's plain progress does (" Container p-web-1  Starting").
type progress struct {
	mu  sync.Mutex
	w   io.Writer
	tty bool
}

// final statuses get the check mark on a terminal; the rest are steps.
var finalStatus = map[string]bool{
	"Created": true, "Started": true, "Running": true, "Stopped": true, "Removed": true,
	"Recreated": true, "Healthy": true, "Exited": true, "Built": true, "Pulled": true,
	"Pushed": true, "Restarted": true, "Killed": true, "Skipped": true, "Found": true,
}

func (p *progress) event(kind, name, status string) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		if !finalStatus[status] {
			return
		}
		fmt.Fprintf(p.w, " \u2714 %s %s  %s\n", kind, name, status)
		return
	}
	fmt.Fprintf(p.w, " %s %s  %s\n", kind, name, status)
}

func (p *progress) warn(format string, args ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "WARN[0000] "+format+"\n", args...)
}
