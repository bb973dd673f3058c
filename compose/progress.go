package compose

import (
	"fmt"
	"sync"
)

// progress prints docker compose's per-object status lines: every step in
// plain mode (" Container p-web-1  Starting"), only outcomes with a check
// mark on a terminal (" ✔ Container p-web-1  Started").
type progress struct {
	mu  sync.Mutex
	svc *Service
}

var finalStates = map[string]bool{
	"Created": true, "Started": true, "Running": true, "Stopped": true, "Removed": true,
	"Healthy": true, "Exited": true, "Built": true, "Pulled": true, "Pushed": true, "Recreated": true,
	"Restarted": true, "Killed": true, "Warning": true, "Error": true,
}

func (c *Service) progress() *progress { return &progress{svc: c} }

func (p *progress) event(kind, name, status string) {
	if p == nil || p.svc.Out == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.svc.TTY {
		if !finalStates[status] {
			return
		}
		mark := "✔"
		if status == "Error" {
			mark = "✘"
		}
		fmt.Fprintf(p.svc.Out, " %s %s %s  %s\n", mark, kind, name, status)
		return
	}
	fmt.Fprintf(p.svc.Out, " %s %s  %s\n", kind, name, status)
}
