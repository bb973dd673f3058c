package stream

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// DefaultDetachKeys is Docker's default escape sequence.
const DefaultDetachKeys = "ctrl-p,ctrl-q"

// ErrDetached is returned by an EscapeReader when the client typed the
// detach sequence.
var ErrDetached = errors.New("detached from container")

// ParseDetachKeys turns "ctrl-p,ctrl-q" or "a,ctrl-@" into bytes: ctrl-a..z
// are 1..26, ctrl-@ 0, ctrl-[ 27, ctrl-\ 28, ctrl-] 29, ctrl-^ 30, ctrl-_ 31;
// a single character stands for itself.
func ParseDetachKeys(s string) ([]byte, error) {
	var out []byte
	for _, key := range strings.Split(s, ",") {
		switch {
		case len(key) == 1:
			out = append(out, key[0])
		case len(key) == 6 && strings.HasPrefix(strings.ToLower(key), "ctrl-"):
			c := key[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c >= 'A' && c <= 'Z':
				out = append(out, c-'A'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_':
				out = append(out, c-'['+27)
			default:
				return nil, fmt.Errorf("invalid detach keys %q: unknown character %q", s, key)
			}
		default:
			return nil, fmt.Errorf("invalid detach keys %q: unknown character %q", s, key)
		}
	}
	return out, nil
}

// EscapeReader passes bytes through until the escape sequence is read, then
// returns ErrDetached. Bytes that start the sequence are held back until it
// is clear whether the whole sequence follows; if not, they are passed on.
type EscapeReader struct {
	r       io.Reader
	keys    []byte
	matched int    // how many bytes of keys are held back
	pending []byte // bytes ready to hand out
	err     error
}

// NewEscapeReader watches r for keys; nil or empty keys disable the escape.
func NewEscapeReader(r io.Reader, keys []byte) *EscapeReader {
	return &EscapeReader{r: r, keys: keys}
}

func (e *EscapeReader) Read(p []byte) (int, error) {
	for len(e.pending) == 0 {
		if e.err != nil {
			return 0, e.err
		}
		if len(e.keys) == 0 {
			return e.r.Read(p)
		}
		buf := make([]byte, len(p))
		n, err := e.r.Read(buf)
		for _, b := range buf[:n] {
			if b == e.keys[e.matched] {
				e.matched++
				if e.matched == len(e.keys) {
					e.err = ErrDetached
					e.matched = 0
					break
				}
				continue
			}
			// The held bytes were not the sequence after all.
			e.pending = append(e.pending, e.keys[:e.matched]...)
			e.matched = 0
			if b == e.keys[0] {
				e.matched = 1
				continue
			}
			e.pending = append(e.pending, b)
		}
		if err != nil && e.err == nil {
			if e.matched > 0 {
				e.pending = append(e.pending, e.keys[:e.matched]...)
				e.matched = 0
			}
			e.err = err
		}
	}
	n := copy(p, e.pending)
	e.pending = e.pending[n:]
	return n, nil
}
