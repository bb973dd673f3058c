package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// writebackChunk is how much written data we let accumulate before asking
// the kernel to start writing it out.
const writebackChunk = 8 << 20

// writebackFile starts disk writeback while a blob is still arriving, so
// that the fsync that makes it durable at commit finds little left to do:
// the disk works in parallel with the network instead of after it.
type writebackFile struct {
	f       *os.File
	off     int64 // file offset of the next write
	started int64 // data before this offset has been handed to writeback
}

func newWritebackFile(f *os.File, off int64) *writebackFile {
	return &writebackFile{f: f, off: off, started: off}
}

func (w *writebackFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= writebackChunk {
		// Best effort: filesystems without support simply sync at commit.
		_ = unix.SyncFileRange(int(w.f.Fd()), w.started, w.off-w.started, unix.SYNC_FILE_RANGE_WRITE)
		w.started = w.off
	}
	return n, err
}
