package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// errDetached is returned by the stdin reader when the user typed the
// detach sequence: the client leaves, the container keeps running.
var errDetached = errors.New("detached from container")

// defaultDetachKeys is docker's ctrl-p,ctrl-q.
var defaultDetachKeys = []byte{16, 17}

// parseDetachKeys parses docker's --detach-keys: comma-separated single
// characters or ctrl-<key> (ctrl-a .. ctrl-z, ctrl-@, ctrl-[, ctrl-\,
// ctrl-], ctrl-^, ctrl-_).
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return defaultDetachKeys, nil
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case len(k) == 6 && strings.HasPrefix(strings.ToLower(k), "ctrl-"):
			c := k[5]
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
				return nil, fmt.Errorf("invalid detach keys %q: unknown key %q", s, k)
			}
		default:
			return nil, fmt.Errorf("invalid detach keys %q: unknown key %q", s, k)
		}
	}
	return out, nil
}

// escapeReader passes input through, holding back bytes that may start
// the detach sequence, and fails with errDetached when it is complete
// (after handing out the input that came before it).
type escapeReader struct {
	r       io.Reader
	keys    []byte
	matched int    // how many keys the held-back input matched
	pending []byte // output ready to hand out
	err     error  // returned once pending is drained
}

func (e *escapeReader) Read(p []byte) (int, error) {
	for len(e.pending) == 0 && e.err == nil {
		buf := make([]byte, len(p))
		n, err := e.r.Read(buf)
		for _, b := range buf[:n] {
			if b == e.keys[e.matched] {
				e.matched++
				if e.matched == len(e.keys) {
					e.err = errDetached
					break
				}
				continue
			}
			// Not the sequence after all: release what was held back.
			e.pending = append(e.pending, e.keys[:e.matched]...)
			e.matched = 0
			if b == e.keys[0] {
				e.matched = 1
				continue
			}
			e.pending = append(e.pending, b)
		}
		if err != nil && e.err == nil {
			e.pending = append(e.pending, e.keys[:e.matched]...)
			e.matched = 0
			e.err = err
		}
	}
	if len(e.pending) == 0 {
		return 0, e.err
	}
	n := copy(p, e.pending)
	e.pending = e.pending[n:]
	return n, nil
}
