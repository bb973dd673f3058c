package shim

import (
	"bytes"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	big := bytes.Repeat([]byte("b"), maxFrame+10)
	frameWriter{w: &buf, stream: streamStderr}.Write(big)
	writeFrame(&buf, streamStdin, nil)
	var got [][]byte
	var streams []byte
	err := readFrames(&buf, func(stream byte, p []byte) error {
		streams, got = append(streams, stream), append(got, p)
		return nil
	})
	if err == nil || len(got) != 3 || len(got[0]) != maxFrame || len(got[1]) != 10 || len(got[2]) != 0 {
		t.Fatalf("frames: %d (err %v)", len(got), err)
	}
	if !bytes.Equal(streams, []byte{streamStderr, streamStderr, streamStdin}) {
		t.Fatalf("streams %v", streams)
	}
}

// The frame reader never panics nor allocates past maxFrame, whatever
// comes over the socket.
func FuzzReadFrames(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 2, 'h', 'i', 0, 0, 0, 0, 0})
	f.Add([]byte{2, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		total := 0
		readFrames(bytes.NewReader(data), func(stream byte, p []byte) error {
			if len(p) > maxFrame {
				t.Fatalf("frame of %d bytes", len(p))
			}
			total += frameHeader + len(p)
			return nil
		})
		if total > len(data) {
			t.Fatalf("decoded %d bytes from %d", total, len(data))
		}
	})
}
