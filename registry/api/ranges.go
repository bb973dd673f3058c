package api

import (
	"errors"
	"strconv"
	"strings"
)

var errBadRange = errors.New("malformed range")

// parseRange parses a single-range "Range: bytes=..." header against a
// blob of the given size. It returns the first offset and the length to
// send. ok=false with a nil error means the header should be ignored (the
// RFC lets a server answer a range it does not support with the whole
// content); errUnsatisfiable means 416.
func parseRange(h string, size int64) (start, length int64, ok bool, err error) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, nil
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		// Suffix range: the last n bytes.
		n, perr := parseUint(last)
		if perr != nil {
			return 0, 0, false, nil
		}
		if n == 0 || size == 0 {
			return 0, 0, false, errUnsatisfiable
		}
		if n > size {
			n = size
		}
		return size - n, n, true, nil
	}
	s, perr := parseUint(first)
	if perr != nil {
		return 0, 0, false, nil
	}
	e := size - 1
	if last != "" {
		if e, perr = parseUint(last); perr != nil {
			return 0, 0, false, nil
		}
		if e < s {
			// RFC 9110 would ignore it; the OCI conformance suite (and
			// clients that probe) expect an explicit 416.
			return 0, 0, false, errUnsatisfiable
		}
		if e > size-1 {
			e = size - 1
		}
	}
	if s >= size {
		return 0, 0, false, errUnsatisfiable
	}
	return s, e - s + 1, true, nil
}

var errUnsatisfiable = errors.New("range not satisfiable")

// parseContentRange parses an upload chunk's Content-Range, "start-end"
// (inclusive), also accepting the RFC form "bytes start-end/total".
func parseContentRange(h string) (start, end int64, err error) {
	s := strings.TrimSpace(h)
	if rest, ok := strings.CutPrefix(s, "bytes"); ok {
		s = strings.TrimLeft(rest, " =")
		if i := strings.IndexByte(s, '/'); i >= 0 {
			s = s[:i]
		}
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, errBadRange
	}
	if start, err = parseUint(a); err != nil {
		return 0, 0, errBadRange
	}
	if end, err = parseUint(b); err != nil || end < start {
		return 0, 0, errBadRange
	}
	return start, end, nil
}

// parseUint accepts only plain decimal digits (no sign, no spaces) that fit
// in an int64.
func parseUint(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, errBadRange
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errBadRange
		}
	}
	return strconv.ParseInt(s, 10, 64)
}
