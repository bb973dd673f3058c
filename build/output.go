package build

import (
	"fmt"
	"io"
	"sync"
)

// output serialises the classic builder's text from parallel stages.
type output struct {
	mu    sync.Mutex
	w     io.Writer
	quiet bool
}

func newOutput(w io.Writer, quiet bool) *output { return &output{w: w, quiet: quiet} }

func (o *output) printf(format string, a ...any) {
	if o.quiet {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format, a...)
}

// Write passes a RUN step's output through.
func (o *output) Write(p []byte) (int, error) {
	if o.quiet {
		return len(p), nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Write(p)
}
