package jsonfile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// pollInterval is how often a follow looks for new lines and rotations.
const pollInterval = 50 * time.Millisecond

// Read streams the entries of the log at path (and its rotated files).
// The channel is closed at the end; a missing log yields nothing.
//
// Files are opened all at once, so a rotation during the read neither
// skips nor repeats lines. As Docker does, Tail counts the last lines of
// the log first, and Since/Until then filter those.
func Read(ctx context.Context, path string, opts ReadOptions) (<-chan Entry, error) {
	files, err := openLog(path)
	if err != nil {
		return nil, err
	}
	// Where each file starts being read, and where its complete lines end.
	starts := make([]int64, len(files))
	ends := make([]int64, len(files))
	for i, f := range files {
		if f == nil {
			continue
		}
		if ends[i], err = completeEnd(f); err != nil {
			closeAll(files)
			return nil, fmt.Errorf("read log %s: %w", path, err)
		}
	}
	if opts.Tail >= 0 {
		want := opts.Tail
		for i := len(files) - 1; i >= 0; i-- {
			if files[i] == nil {
				continue
			}
			if want == 0 {
				starts[i] = ends[i]
				continue
			}
			off, found, err := tailOffset(files[i], ends[i], want)
			if err != nil {
				closeAll(files)
				return nil, fmt.Errorf("read log %s: %w", path, err)
			}
			starts[i] = off
			want -= found
		}
	}
	out := make(chan Entry, 64)
	go func() {
		defer close(out)
		r := &reader{ctx: ctx, opts: opts, out: out}
		last := len(files) - 1
		for i, f := range files[:last] {
			if f != nil {
				r.lines(f, starts[i], ends[i])
				f.Close()
			}
		}
		cur := files[last]
		off := starts[last]
		if cur != nil {
			off = r.lines(cur, off, ends[last])
		}
		if opts.Follow && !r.done {
			cur = r.follow(path, cur, off)
		}
		if cur != nil {
			cur.Close()
		}
	}()
	return out, nil
}

// openLog opens the current log first, then path.1, path.2 ... (a file
// rotated between two opens shows up twice: the copy is dropped). It
// returns them oldest first, the current one last (nil if missing).
func openLog(path string) ([]*os.File, error) {
	cur, err := os.Open(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read log: %w", err)
	}
	var seen []os.FileInfo
	if cur != nil {
		if st, err := cur.Stat(); err == nil {
			seen = append(seen, st)
		}
	}
	var rotated []*os.File
	for i := 1; ; i++ {
		f, err := os.Open(path + "." + strconv.Itoa(i))
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			closeAll(rotated)
			if cur != nil {
				cur.Close()
			}
			return nil, fmt.Errorf("read log: %w", err)
		}
		st, err := f.Stat()
		dup := err != nil
		for _, s := range seen {
			if err == nil && os.SameFile(s, st) {
				dup = true
			}
		}
		if dup {
			f.Close()
			continue
		}
		seen = append(seen, st)
		rotated = append(rotated, f)
	}
	files := make([]*os.File, 0, len(rotated)+1)
	for i := len(rotated) - 1; i >= 0; i-- {
		files = append(files, rotated[i])
	}
	return append(files, cur), nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// completeEnd is the offset just after the last newline of f: a line being
// written is not read yet.
func completeEnd(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	off, _, err := lastNewlines(f, st.Size(), 1)
	return off, err
}

// tailOffset finds where the last n lines before end start; found is how
// many lines there were (fewer than n when the file is short).
func tailOffset(f *os.File, end int64, n int) (off int64, found int, err error) {
	if end == 0 {
		return 0, 0, nil
	}
	// The newline ending the last line is not a line start: skip it, then
	// the n-th newline before it ends the line preceding the tail.
	off, found, err = lastNewlines(f, end-1, n)
	if err != nil {
		return 0, 0, err
	}
	if found < n {
		return 0, found + 1, nil
	}
	return off, n, nil
}

// lastNewlines scans backwards from end for up to n newlines; off is just
// after the n-th one found (0 if fewer), found how many there were.
func lastNewlines(f *os.File, end int64, n int) (off int64, found int, err error) {
	buf := make([]byte, 32<<10)
	pos := end
	for pos > 0 {
		size := int64(len(buf))
		if pos < size {
			size = pos
		}
		pos -= size
		if _, err := f.ReadAt(buf[:size], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		chunk := buf[:size]
		for {
			i := bytes.LastIndexByte(chunk, '\n')
			if i < 0 {
				break
			}
			found++
			if found == n {
				return pos + int64(i) + 1, found, nil
			}
			chunk = chunk[:i]
		}
	}
	return 0, found, nil
}

// reader sends decoded, filtered entries until the context ends or an
// entry is past Until.
type reader struct {
	ctx  context.Context
	opts ReadOptions
	out  chan<- Entry
	done bool
}

// lines sends the complete lines of f in [from, end) (end < 0: up to EOF)
// and returns the offset after the last complete line read.
func (r *reader) lines(f *os.File, from, end int64) int64 {
	if r.done {
		return from
	}
	var src io.Reader
	if end >= 0 {
		src = io.NewSectionReader(f, from, end-from)
	} else {
		src = io.NewSectionReader(f, from, 1<<62)
	}
	br := bufio.NewReaderSize(src, 64<<10)
	off := from
	for !r.done {
		line, err := br.ReadBytes('\n')
		if err != nil {
			break // EOF or a line still being written
		}
		off += int64(len(line))
		e, ok := decodeLine(line)
		if !ok {
			continue
		}
		r.send(e)
	}
	return off
}

func (r *reader) send(e Entry) {
	if !r.opts.Since.IsZero() && e.Time.Before(r.opts.Since) {
		return
	}
	if !r.opts.Until.IsZero() && e.Time.After(r.opts.Until) {
		r.done = true
		return
	}
	select {
	case r.out <- e:
	case <-r.ctx.Done():
		r.done = true
	}
}

// follow reads new lines as they are written. When the log is rotated (the
// path names another file), the old file is read to its end before the
// new one, so no line is lost; a log truncated in place is read again from
// its start. It returns the file it was reading.
func (r *reader) follow(path string, cur *os.File, off int64) *os.File {
	stopping := false
	for !r.done {
		if cur == nil {
			f, err := os.Open(path)
			if err == nil {
				cur, off = f, 0
			}
		}
		if cur != nil {
			off = r.lines(cur, off, -1)
			curSt, err1 := cur.Stat()
			st, err2 := os.Stat(path)
			switch {
			case err1 != nil:
			case err2 == nil && !os.SameFile(curSt, st):
				// Rotated: the writer closed the old file before renaming
				// it, so one more read drains it. Then on to the file that
				// came after it, which is not the current one when several
				// rotations happened since the last look.
				off = r.lines(cur, off, -1)
				cur.Close()
				cur, off = openNext(path, curSt), 0
				continue
			case curSt.Size() < off:
				off = 0
				continue
			}
		}
		if stopping {
			break
		}
		if !r.opts.Until.IsZero() && time.Now().After(r.opts.Until) {
			// Entries up to now were read: nothing can still qualify.
			stopping = true
			continue
		}
		select {
		case <-r.ctx.Done():
			r.done = true
		case <-r.opts.Stop:
			// One more pass for the last lines, then end.
			stopping = true
		case <-time.After(pollInterval):
		}
	}
	return cur
}

// openNext opens the file written after the one described by prev: if
// prev is now path.N, that is path.N-1 (path for N = 1). It returns nil
// when prev is gone (the current file is then opened on the next pass).
func openNext(path string, prev os.FileInfo) *os.File {
	for i := 1; ; i++ {
		st, err := os.Stat(path + "." + strconv.Itoa(i))
		if err != nil {
			return nil
		}
		if !os.SameFile(st, prev) {
			continue
		}
		next := path
		if i > 1 {
			next = path + "." + strconv.Itoa(i-1)
		}
		f, err := os.Open(next)
		if err != nil {
			return nil
		}
		return f
	}
}

// decodeLines decodes complete lines; it returns how many bytes they took.
// Malformed lines are skipped (a torn write after a crash must not end the log).
func decodeLines(r *bufio.Reader) ([]Entry, int64) {
	var es []Entry
	var n int64
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return es, n
		}
		n += int64(len(line))
		if e, ok := decodeLine(line); ok {
			es = append(es, e)
		}
	}
}

// decodeLine decodes one json-file line; anything but "stderr" is stdout.
func decodeLine(line []byte) (Entry, bool) {
	var rec record
	if err := json.Unmarshal(bytes.TrimSpace(line), &rec); err != nil {
		return Entry{}, false
	}
	if rec.Stream != "stderr" {
		rec.Stream = "stdout"
	}
	return Entry{Stream: rec.Stream, Line: []byte(rec.Log), Time: rec.Time}, true
}
