package stream

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/moby/moby/api/pkg/stdcopy"
)

func TestMuxFramesMatchDockerCapture(t *testing.T) {
	var buf bytes.Buffer
	m := NewMux(&buf)
	m.Writer(Stdout).Write([]byte("out\n"))
	m.Writer(Stderr).Write([]byte("err\n"))
	// Bytes observed on the wire from dockerd for the same output.
	want := []byte{1, 0, 0, 0, 0, 0, 0, 4, 'o', 'u', 't', '\n', 2, 0, 0, 0, 0, 0, 0, 4, 'e', 'r', 'r', '\n'}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("frames % x, want % x", buf.Bytes(), want)
	}
}

func TestMuxRoundTripThroughStdCopy(t *testing.T) {
	var buf bytes.Buffer
	m := NewMux(&buf)
	big := bytes.Repeat([]byte("x"), maxFrame+10) // split into two frames
	m.Writer(Stdout).Write(big)
	m.Writer(Stderr).Write([]byte("e"))
	m.WriteFrame(Systemerr, []byte("daemon failed"))
	var out, errOut bytes.Buffer
	_, err := stdcopy.StdCopy(&out, &errOut, &buf)
	if err == nil || !strings.Contains(err.Error(), "daemon failed") {
		t.Errorf("systemerr frame gave %v", err)
	}
	if !bytes.Equal(out.Bytes(), big) || errOut.String() != "e" {
		t.Errorf("stdout %d bytes, stderr %q", out.Len(), errOut.String())
	}
}

func TestParseDetachKeys(t *testing.T) {
	tests := []struct {
		in      string
		want    []byte
		wantErr bool
	}{
		{"ctrl-p,ctrl-q", []byte{16, 17}, false},
		{"ctrl-a", []byte{1}, false},
		{"ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", []byte{0, 27, 28, 29, 30, 31}, false},
		{"a,b", []byte{'a', 'b'}, false},
		{"CTRL-Z", []byte{26}, false},
		{"ctrl-~", nil, true},
		{"ctrl-ab", nil, true},
		{"", nil, true},
		{"ctrl-p,", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseDetachKeys(tt.in)
		if (err != nil) != tt.wantErr || !bytes.Equal(got, tt.want) {
			t.Errorf("ParseDetachKeys(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestEscapeReader(t *testing.T) {
	keys := []byte{16, 17}
	tests := []struct {
		name, in, want string
		detached       bool
	}{
		{"plain", "hello", "hello", false},
		{"detach", "ab\x10\x11cd", "ab", true},
		{"partial then other", "a\x10b", "a\x10b", false},
		{"partial at EOF", "a\x10", "a\x10", false},
		{"repeated first key", "\x10\x10\x11", "\x10", true},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tt.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(NewEscapeReader(r, keys))
			if string(got) != tt.want {
				t.Errorf("%s (oneByte=%v): read %q, want %q", tt.name, oneByte, got, tt.want)
			}
			if errors.Is(err, ErrDetached) != tt.detached {
				t.Errorf("%s (oneByte=%v): err %v, detached want %v", tt.name, oneByte, err, tt.detached)
			}
		}
	}
}

func FuzzEscapeReader(f *testing.F) {
	f.Add([]byte("ab\x10\x11cd"), []byte{16, 17})
	f.Add([]byte("\x10\x10\x10"), []byte{16, 16, 17})
	f.Fuzz(func(t *testing.T, in, keys []byte) {
		got, err := io.ReadAll(NewEscapeReader(bytes.NewReader(in), keys))
		if err == nil {
			// Without a detach the stream passes through unchanged.
			if !bytes.Equal(got, in) {
				t.Fatalf("read %q from %q with keys %q", got, in, keys)
			}
			return
		}
		if !errors.Is(err, ErrDetached) {
			t.Fatalf("unexpected error %v", err)
		}
		// What was read is a prefix of the input, followed by the keys.
		if !bytes.HasPrefix(in, got) || !bytes.Contains(in[len(got):], keys) {
			t.Fatalf("detached reading %q from %q with keys %q", got, in, keys)
		}
	})
}
