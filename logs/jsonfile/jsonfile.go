// Package jsonfile writes and reads container logs in Docker's json-file
// format: one {"log":"...","stream":"stdout|stderr","time":"RFC3339Nano"}
// object per line, rotated by size.
//
// CONTRACT (agreed with shim/ and daemon/): the exported names and
// signatures in this file are what other packages call.
package jsonfile

import (
	"time"
)

// Entry is one log line (Line keeps its trailing newline if it had one).
type Entry struct {
	Stream string // "stdout" or "stderr"
	Line   []byte
	Time   time.Time
}

// ReadOptions select entries.
type ReadOptions struct {
	Tail   int       // last N entries; < 0 means all
	Since  time.Time // zero: no lower bound
	Until  time.Time // zero: no upper bound
	Follow bool      // keep reading new entries (across rotations) until ctx is done or Stop is closed
	// Stop, when closed, ends a follow after what is already written has been read.
	Stop <-chan struct{}
}

// record is the on-disk form of an entry.
type record struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}
