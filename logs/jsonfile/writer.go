package jsonfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// Defaults bound a log that has no max-size. Docker keeps json-file logs
// unbounded by default; we cap them so that a chatty container cannot fill
// the disk, at Docker's "local" driver bounds: 5 files of 20 MiB. When only
// max-size is given, max-file defaults to 1, as in Docker's json-file.
const (
	DefaultMaxSize  = 20 << 20
	DefaultMaxFiles = 5
	// maxLine is where a line without a newline is cut, as Docker does.
	maxLine = 16 << 10
)

// Writer appends entries to a log file, rotating it by size. It is safe
// for concurrent use by the stdout and stderr copiers.
type Writer struct {
	mu       sync.Mutex
	path     string
	f        *os.File
	size     int64
	maxSize  int64
	maxFiles int
	partial  map[string][]byte
	buf      bytes.Buffer
}

// NewWriter opens (appending) the log at path. maxSize 0 and maxFiles 0
// mean the defaults.
func NewWriter(path string, maxSize int64, maxFiles int) (*Writer, error) {
	switch {
	case maxSize > 0 && maxFiles <= 0:
		maxFiles = 1
	case maxFiles <= 0:
		maxFiles = DefaultMaxFiles
	}
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open log: %w", err)
	}
	return &Writer{path: path, f: f, size: st.Size(), maxSize: maxSize, maxFiles: maxFiles, partial: map[string][]byte{}}, nil
}

// Write records p, output of stream, splitting it into lines; an
// unterminated tail waits for the rest of its line (up to 16 KiB).
func (w *Writer) Write(stream string, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now().UTC()
	data := append(w.partial[stream], p...)
	w.partial[stream] = nil
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if len(data) < maxLine {
				w.partial[stream] = append([]byte(nil), data...)
				return nil
			}
			i = maxLine - 1
			if err := w.emit(stream, data[:i+1], now); err != nil {
				return err
			}
			data = data[i+1:]
			continue
		}
		if err := w.emit(stream, data[:i+1], now); err != nil {
			return err
		}
		data = data[i+1:]
	}
	return nil
}

// Flush writes out unterminated lines (at the end of a stream).
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for stream, data := range w.partial {
		if len(data) > 0 {
			if err := w.emit(stream, data, time.Now().UTC()); err != nil {
				return err
			}
		}
		delete(w.partial, stream)
	}
	return nil
}

func (w *Writer) emit(stream string, line []byte, t time.Time) error {
	encodeRecord(&w.buf, stream, line, t)
	if w.size+int64(w.buf.Len()) > w.maxSize && w.size > 0 {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf.Bytes())
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	return nil
}

// rotate shifts path.N-1 to path.N ... path to path.1, keeping maxFiles
// files in all; with one file, the log is replaced. The old file is closed
// before it is renamed or unlinked (never truncated), so that a follower
// holding it open reads it to its end and then moves to the new file.
func (w *Writer) rotate() error {
	w.f.Close()
	if w.maxFiles > 1 {
		for i := w.maxFiles - 1; i >= 1; i-- {
			from := w.path
			if i > 1 {
				from = w.path + "." + strconv.Itoa(i-1)
			}
			if err := os.Rename(from, w.path+"."+strconv.Itoa(i)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("rotate log: %w", err)
			}
		}
	} else if err := os.Remove(w.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rotate log: %w", err)
	}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	w.f, w.size = f, 0
	return nil
}

// Close flushes partial lines and closes the file.
func (w *Writer) Close() error {
	w.Flush()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}

// encodeRecord renders one log line in Docker's json-file form into buf
// and returns its bytes (newline included). Invalid UTF-8 becomes U+FFFD,
// as in Docker's encoder.
func encodeRecord(buf *bytes.Buffer, stream string, line []byte, t time.Time) []byte {
	buf.Reset()
	buf.WriteString(`{"log":`)
	b, _ := json.Marshal(string(line))
	buf.Write(b)
	buf.WriteString(`,"stream":"`)
	buf.WriteString(stream)
	buf.WriteString(`","time":"`)
	buf.WriteString(t.Format(time.RFC3339Nano))
	buf.WriteString("\"}\n")
	return buf.Bytes()
}
