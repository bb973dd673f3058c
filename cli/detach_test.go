package cli

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseDetachKeys(t *testing.T) {
	for in, want := range map[string][]byte{
		"":              {16, 17},
		"ctrl-p,ctrl-q": {16, 17},
		"ctrl-a,x":      {1, 'x'},
		"ctrl-@,ctrl-_": {0, 31},
		"ctrl-[":        {27},
	} {
		got, err := parseDetachKeys(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("parseDetachKeys(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"ctrl-", "ctrl-1", "ab", "ctrl-p,"} {
		if _, err := parseDetachKeys(bad); err == nil {
			t.Errorf("parseDetachKeys(%q) accepted", bad)
		}
	}
}

func TestEscapeReader(t *testing.T) {
	for _, tc := range []struct {
		in       string
		want     string
		detached bool
	}{
		{"hello", "hello", false},
		{"ab\x10\x11cd", "ab", true},
		{"a\x10b", "a\x10b", false},    // half a sequence is passed on
		{"\x10\x10\x11", "\x10", true}, // restarts on a repeated first key
		{"x\x10", "x\x10", false},      // a held key comes out at EOF
		{"\x11\x10\x11", "\x11", true}, // second key alone is data
	} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			var out bytes.Buffer
			_, err := io.Copy(&out, &escapeReader{r: r, keys: defaultDetachKeys})
			if out.String() != tc.want || errors.Is(err, errDetached) != tc.detached {
				t.Errorf("%q (one byte %v): got %q, %v; want %q detached=%v", tc.in, oneByte, out.String(), err, tc.want, tc.detached)
			}
		}
	}
}
