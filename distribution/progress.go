package distribution

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client/pkg/jsonmessage"
)

// Message is one line of Docker's JSON message stream, fields in dockerd's order.
type Message struct {
	Stream         string               `json:"stream,omitempty"`
	Status         string               `json:"status,omitempty"`
	ProgressDetail *jsonstream.Progress `json:"progressDetail,omitempty"`
	Progress       string               `json:"progress,omitempty"`
	ID             string               `json:"id,omitempty"`
	ErrorDetail    *jsonstream.Error    `json:"errorDetail,omitempty"`
	Error          string               `json:"error,omitempty"`
	Aux            json.RawMessage      `json:"aux,omitempty"`
}

// Progress writes a JSON message stream (what dockerd sends for pull, push
// and load). A nil *Progress discards everything. Safe for concurrent use.
type Progress struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewProgress writes messages to w, each followed by "\r\n".
func NewProgress(w io.Writer) *Progress { return &Progress{w: w} }

// Send writes m.
func (p *Progress) Send(m Message) {
	if p == nil || p.w == nil {
		return
	}
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	if _, err := p.w.Write(append(b, '\r', '\n')); err != nil {
		p.err = err
	}
}

// Status sends a plain status line ("Digest: ...").
func (p *Progress) Status(id, status string) { p.Send(Message{Status: status, ID: id}) }

// Event sends a per-layer status with an empty progress detail ("Pull complete").
func (p *Progress) Event(id, status string) {
	p.Send(Message{Status: status, ProgressDetail: &jsonstream.Progress{}, ID: id})
}

// Bar sends a progress bar ("Downloading", "Pushing").
func (p *Progress) Bar(id, action string, current, total int64) {
	d := &jsonstream.Progress{Current: current, Total: total}
	p.Send(Message{Status: action, ProgressDetail: d, Progress: jsonmessage.RenderTUIProgress(*d, 200), ID: id})
}

// Aux sends out-of-band data (the push result).
func (p *Progress) Aux(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	p.Send(Message{ProgressDetail: &jsonstream.Progress{}, Aux: b})
}

// StreamLine sends a "stream" message (load's "Loaded image: ...").
func (p *Progress) StreamLine(s string) { p.Send(Message{Stream: s}) }

// Error sends an error as dockerd does inside a started stream.
func (p *Progress) Error(err error) {
	p.Send(Message{ErrorDetail: &jsonstream.Error{Message: err.Error()}, Error: err.Error()})
}

// shortID is the 12 hex characters Docker shows for a layer.
func shortID(d interface{ Encoded() string }) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// progressReader reports reads of one blob as a progress bar, at most
// every 100ms or 1%, and the completion statuses at EOF.
type progressReader struct {
	r             io.Reader
	p             *Progress
	id, action    string
	total         int64
	current, last int64
	lastAt        time.Time
	onEOF         func()
	done          bool
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.current += int64(n)
	step := int64(512 << 10)
	if pr.total > 0 && pr.total/100 < step {
		step = pr.total / 100
	}
	if n > 0 && (pr.current-pr.last > step || pr.current == pr.total) {
		if now := time.Now(); now.Sub(pr.lastAt) >= 100*time.Millisecond || pr.current == pr.total {
			pr.p.Bar(pr.id, pr.action, pr.current, pr.total)
			pr.last, pr.lastAt = pr.current, now
		}
	}
	if err == io.EOF && !pr.done {
		pr.done = true
		if pr.onEOF != nil {
			pr.onEOF()
		}
	}
	return n, err
}
