package jsonfile

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
