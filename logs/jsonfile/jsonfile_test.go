package jsonfile

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func collect(t *testing.T, path string, opts ReadOptions) []string {
	t.Helper()
	ch, err := Read(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for e := range ch {
		out = append(out, e.Stream+":"+string(e.Line))
	}
	return out
}

func TestWriteReadTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write("stdout", []byte("one\ntw"))
	w.Write("stderr", []byte("err\n"))
	w.Write("stdout", []byte("o\nthree"))
	w.Close()
	got := strings.Join(collect(t, path, ReadOptions{Tail: -1}), "|")
	if got != "stdout:one\n|stderr:err\n|stdout:two\n|stdout:three" {
		t.Fatalf("entries: %q", got)
	}
	got = strings.Join(collect(t, path, ReadOptions{Tail: 2}), "|")
	if got != "stdout:two\n|stdout:three" {
		t.Fatalf("tail 2: %q", got)
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte(`{"log":"one\n","stream":"stdout","time":"`)) {
		t.Fatalf("not Docker's format: %s", data)
	}
	if got := collect(t, filepath.Join(t.TempDir(), "missing.log"), ReadOptions{Tail: -1}); len(got) != 0 {
		t.Fatalf("missing log yielded %q", got)
	}
}

func TestLongLineSplit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, _ := NewWriter(path, 0, 0)
	w.Write("stdout", bytes.Repeat([]byte("x"), 40<<10))
	w.Close()
	es := collect(t, path, ReadOptions{Tail: -1})
	if len(es) != 3 || len(es[0]) != len("stdout:")+maxLine {
		t.Fatalf("40 KiB line split into %d entries", len(es))
	}
}

func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, _ := NewWriter(path, 1000, 3)
	for i := 0; i < 100; i++ {
		w.Write("stdout", []byte(strings.Repeat("y", 20)+"\n"))
	}
	w.Close()
	if _, err := os.Stat(path + ".2"); err != nil {
		t.Fatalf("no second rotated file: %v", err)
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Fatalf("kept more than 3 files")
	}
	for _, p := range []string{path, path + ".1", path + ".2"} {
		if st, _ := os.Stat(p); st.Size() > 1000 {
			t.Fatalf("%s is %d bytes, over max-size", p, st.Size())
		}
	}
	es := collect(t, path, ReadOptions{Tail: -1})
	if len(es) < 20 || len(es) >= 100 {
		t.Fatalf("read %d entries across rotated files", len(es))
	}
}

func TestFollowUntilStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, _ := NewWriter(path, 0, 0)
	w.Write("stdout", []byte("before\n"))
	stop := make(chan struct{})
	ch, err := Read(context.Background(), path, ReadOptions{Tail: -1, Follow: true, Stop: stop})
	if err != nil {
		t.Fatal(err)
	}
	if e := <-ch; string(e.Line) != "before\n" {
		t.Fatalf("first: %q", e.Line)
	}
	w.Write("stdout", []byte("after\n"))
	select {
	case e := <-ch:
		if string(e.Line) != "after\n" {
			t.Fatalf("followed: %q", e.Line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not deliver a new line")
	}
	w.Write("stderr", []byte("last\n"))
	close(stop)
	var rest []string
	for e := range ch {
		rest = append(rest, string(e.Line))
	}
	if strings.Join(rest, "") != "last\n" {
		t.Fatalf("after stop: %q", rest)
	}
}

func TestSinceUntil(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	data := `{"log":"a\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}
not json
{"log":"b\n","stream":"stderr","time":"2026-01-02T00:00:00Z"}
{"log":"c\n","stream":"stdout","time":"2026-01-03T00:00:00Z"}
`
	os.WriteFile(path, []byte(data), 0o600)
	got := collect(t, path, ReadOptions{Tail: -1, Since: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)})
	if strings.Join(got, "|") != "stderr:b\n" {
		t.Fatalf("since/until: %q", got)
	}
}

func FuzzDecodeLines(f *testing.F) {
	f.Add([]byte(`{"log":"a\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}` + "\n"))
	f.Add([]byte("{\"log\":\n\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, n := decodeLines(bufio.NewReader(bytes.NewReader(data)))
		if n > int64(len(data)) || len(es) > bytes.Count(data, []byte("\n")) {
			t.Fatalf("decoded %d entries, %d bytes from %d", len(es), n, len(data))
		}
	})
}

// A follower must see every line, in order, while the log rotates under
// it, whether rotation renames (max-file > 1) or replaces (max-file 1).
func TestFollowAcrossRotation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxFiles int
	}{{"rename", 3}, {"replace", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c-json.log")
			w, err := NewWriter(path, 1500, tc.maxFiles)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ch, err := Read(ctx, path, ReadOptions{Tail: -1, Follow: true})
			if err != nil {
				t.Fatal(err)
			}
			const batches, perBatch = 8, 10
			n := 0
			for b := 0; b < batches; b++ {
				// Each batch (~1 KB) rotates at most once; the test
				// waits for it to be read, as a slow follower would.
				for i := 0; i < perBatch; i++ {
					if err := w.Write("stdout", []byte(fmt.Sprintf("line %03d %s\n", b*perBatch+i, strings.Repeat("z", 80)))); err != nil {
						t.Fatal(err)
					}
				}
				for ; n < (b+1)*perBatch; n++ {
					select {
					case e := <-ch:
						if want := fmt.Sprintf("line %03d ", n); !strings.HasPrefix(string(e.Line), want) {
							t.Fatalf("entry %d: got %q", n, e.Line)
						}
					case <-ctx.Done():
						t.Fatalf("follow stalled after %d entries", n)
					}
				}
			}
			if _, err := os.Stat(path + ".1"); tc.maxFiles > 1 && err != nil {
				t.Fatalf("the log never rotated: %v", err)
			}
		})
	}
}

// Several rotations between two polls of the follower lose nothing while
// the files it has not read yet are kept.
func TestFollowManyRotationsBetweenPolls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path, 600, 9)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write("stdout", []byte("first\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stop := make(chan struct{})
	ch, err := Read(ctx, path, ReadOptions{Tail: -1, Follow: true, Stop: stop})
	if err != nil {
		t.Fatal(err)
	}
	if e := <-ch; string(e.Line) != "first\n" {
		t.Fatalf("first entry %q", e.Line)
	}
	// About 5 rotations at once, well within one poll interval.
	for i := 0; i < 30; i++ {
		w.Write("stderr", []byte(fmt.Sprintf("burst %02d %s\n", i, strings.Repeat("q", 40))))
	}
	close(stop)
	i := 0
	for e := range ch {
		if want := fmt.Sprintf("burst %02d ", i); !strings.HasPrefix(string(e.Line), want) || e.Stream != "stderr" {
			t.Fatalf("entry %d: %s %q", i, e.Stream, e.Line)
		}
		i++
	}
	if i != 30 {
		t.Fatalf("read %d of 30 burst entries", i)
	}
}

func TestTailAcrossRotatedFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, _ := NewWriter(path, 700, 4)
	for i := 0; i < 30; i++ {
		w.Write("stdout", []byte(fmt.Sprintf("n%02d %s\n", i, strings.Repeat("t", 50))))
	}
	w.Close()
	if _, err := os.Stat(path + ".2"); err != nil {
		t.Fatalf("expected at least 3 files: %v", err)
	}
	all := collect(t, path, ReadOptions{Tail: -1})
	if len(all) < 13 || len(all) >= 30 || !strings.HasSuffix(all[len(all)-1], "n29 "+strings.Repeat("t", 50)+"\n") {
		t.Fatalf("all (%d entries) should end with the last line and miss the dropped file", len(all))
	}
	for _, tail := range []int{0, 1, 12, len(all)} {
		got := collect(t, path, ReadOptions{Tail: tail})
		if len(got) != tail {
			t.Fatalf("tail %d: %d entries", tail, len(got))
		}
		for i, line := range got {
			if want := fmt.Sprintf("stdout:n%02d ", 30-tail+i); !strings.HasPrefix(line, want) {
				t.Fatalf("tail %d entry %d: %q, want prefix %q", tail, i, line, want)
			}
		}
	}
	// More than there is: everything kept.
	if got := collect(t, path, ReadOptions{Tail: 1000}); len(got) != len(all) {
		t.Fatalf("tail 1000: %d entries, all: %d", len(got), len(all))
	}
}

// Docker takes the last N lines first, then filters them by time.
func TestTailThenSince(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	data := `{"log":"a\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}
{"log":"b\n","stream":"stdout","time":"2026-01-02T00:00:00Z"}
{"log":"c\n","stream":"stdout","time":"2026-01-03T00:00:00Z"}
{"log":"partial","stream":"stdout","time":"2026-01-04T00:00:00Z"`
	os.WriteFile(path, []byte(data), 0o600)
	got := collect(t, path, ReadOptions{Tail: 2, Since: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)})
	if strings.Join(got, "|") != "stdout:b\n|stdout:c\n" {
		t.Fatalf("tail 2 since: %q", got)
	}
	got = collect(t, path, ReadOptions{Tail: 1, Since: time.Date(2026, 1, 3, 12, 0, 0, 0, time.UTC)})
	if len(got) != 0 {
		t.Fatalf("tail 1 since after it: %q (a line still being written is not an entry)", got)
	}
}

func TestDefaults(t *testing.T) {
	for _, tc := range []struct {
		size      int64
		files     int
		wantSize  int64
		wantFiles int
	}{
		{0, 0, DefaultMaxSize, DefaultMaxFiles},
		{1 << 20, 0, 1 << 20, 1},
		{0, 3, DefaultMaxSize, 3},
		{5000, 2, 5000, 2},
	} {
		w, err := NewWriter(filepath.Join(t.TempDir(), "l"), tc.size, tc.files)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		if w.maxSize != tc.wantSize || w.maxFiles != tc.wantFiles {
			t.Errorf("NewWriter(%d, %d): %d x %d, want %d x %d", tc.size, tc.files, w.maxSize, w.maxFiles, tc.wantSize, tc.wantFiles)
		}
	}
}

// Decoding never panics, and whatever the writer encodes reads back.
func FuzzDecodeLine(f *testing.F) {
	f.Add([]byte(`{"log":"a\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}`), []byte("hi\n"))
	f.Add([]byte(`{"log":"\u003c\ud800","stream":"stderr","time":"bad"}`), []byte("<\xff>"))
	f.Add([]byte("{\"log\":\n\n{}\n"), []byte{})
	f.Fuzz(func(t *testing.T, line, payload []byte) {
		decodeLine(line)
		var buf bytes.Buffer
		enc := encodeRecord(&buf, "stderr", payload, time.Unix(1700000000, 123).UTC())
		e, ok := decodeLine(enc)
		if !ok {
			t.Fatalf("cannot decode what was written: %q", enc)
		}
		if e.Stream != "stderr" || !e.Time.Equal(time.Unix(1700000000, 123)) {
			t.Fatalf("decoded %s at %v", e.Stream, e.Time)
		}
		if utf8.Valid(payload) && !bytes.Equal(e.Line, payload) {
			t.Fatalf("payload %q read back as %q", payload, e.Line)
		}
	})
}
