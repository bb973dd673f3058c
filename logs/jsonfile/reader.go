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
	"syscall"
	"time"
)

// Read streams the entries of the log at path (and its rotated files).
// The channel is closed at the end; a missing log yields nothing.
func Read(ctx context.Context, path string, opts ReadOptions) (<-chan Entry, error) {
	var files []string
	for i := 9; i >= 1; i-- {
		p := path + "." + strconv.Itoa(i)
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	out := make(chan Entry, 64)
	var entries []Entry
	// Read what is written now, oldest file first.
	for _, p := range files {
		es, _, err := readFile(p, 0)
		if err != nil {
			return nil, err
		}
		entries = append(entries, es...)
	}
	cur, offset, err := readFile(path, 0)
	if err != nil {
		return nil, err
	}
	entries = append(entries, cur...)
	entries = filter(entries, opts)
	if opts.Tail >= 0 && len(entries) > opts.Tail {
		entries = entries[len(entries)-opts.Tail:]
	}
	go func() {
		defer close(out)
		for _, e := range entries {
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
		if opts.Follow {
			follow(ctx, path, offset, opts, out)
		}
	}()
	return out, nil
}

func filter(es []Entry, opts ReadOptions) []Entry {
	if opts.Since.IsZero() && opts.Until.IsZero() {
		return es
	}
	out := es[:0]
	for _, e := range es {
		if !opts.Since.IsZero() && e.Time.Before(opts.Since) {
			continue
		}
		if !opts.Until.IsZero() && e.Time.After(opts.Until) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// readFile decodes a whole log file, returning the offset after the last
// complete line. A missing file is empty.
func readFile(path string, from int64) ([]Entry, int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil, 0, fmt.Errorf("read log: %w", err)
	}
	es, n := decodeLines(bufio.NewReaderSize(f, 64<<10))
	return es, from + n, nil
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

// follow polls the file for new lines, reopening it when it was rotated
// (a new inode, or a size below our offset), until ctx ends or Stop is
// closed and everything written has been read.
func follow(ctx context.Context, path string, offset int64, opts ReadOptions, out chan<- Entry) {
	ino := inode(path)
	stopping := false
	for {
		if st, err := os.Stat(path); err == nil {
			if i := inodeOf(st); i != ino || st.Size() < offset {
				ino, offset = i, 0
			}
			if st.Size() > offset {
				es, n, err := readFile(path, offset)
				if err != nil {
					return
				}
				offset = n
				for _, e := range filter(es, ReadOptions{Until: opts.Until}) {
					select {
					case out <- e:
					case <-ctx.Done():
						return
					}
				}
				continue
			}
		}
		if stopping {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-opts.Stop:
			// One more pass to pick up the last lines, then end.
			stopping = true
		case <-time.After(50 * time.Millisecond):
		}
		if !opts.Until.IsZero() && time.Now().After(opts.Until) {
			return
		}
	}
}

func inode(path string) uint64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return inodeOf(st)
}

func inodeOf(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}
