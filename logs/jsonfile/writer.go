package jsonfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// Defaults bound a log that has no max-size: Docker keeps json-file logs
// unbounded by default; we cap them so a chatty container cannot fill the disk.
const (
	DefaultMaxSize  = 100 << 20
	DefaultMaxFiles = 1
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
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if maxFiles <= 0 {
		maxFiles = DefaultMaxFiles
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
	w.buf.Reset()
	w.buf.WriteString(`{"log":`)
	b, _ := json.Marshal(string(line))
	w.buf.Write(b)
	w.buf.WriteString(`,"stream":"`)
	w.buf.WriteString(stream)
	w.buf.WriteString(`","time":"`)
	w.buf.WriteString(t.Format(time.RFC3339Nano))
	w.buf.WriteString("\"}\n")
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
// files in all; with one file, the log is truncated.
func (w *Writer) rotate() error {
	w.f.Close()
	if w.maxFiles > 1 {
		for i := w.maxFiles - 1; i >= 1; i-- {
			from := w.path
			if i > 1 {
				from = w.path + "." + strconv.Itoa(i-1)
			}
			os.Rename(from, w.path+"."+strconv.Itoa(i))
		}
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
