package image

import (
	"errors"
	"io"
)

// readAhead runs src on its own goroutine, a few chunks ahead of the
// reader: decompression and hashing then overlap with unpacking, which
// spends its time in system calls.
type readAhead struct {
	ch   chan []byte
	errc chan error
	stop chan struct{}
	done chan struct{}
	cur  []byte
	err  error
}

const (
	readAheadChunk  = 256 << 10
	readAheadChunks = 16
)

func newReadAhead(src io.Reader) *readAhead {
	p := &readAhead{
		ch:   make(chan []byte, readAheadChunks),
		errc: make(chan error, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go func() {
		defer close(p.done)
		for {
			buf := make([]byte, readAheadChunk)
			n, err := io.ReadFull(src, buf)
			if n > 0 {
				select {
				case p.ch <- buf[:n]:
				case <-p.stop:
					p.errc <- errors.New("read-ahead stopped")
					close(p.ch)
					return
				}
			}
			if err != nil {
				if err == io.ErrUnexpectedEOF {
					err = nil
				}
				if err == io.EOF {
					err = nil
				}
				p.errc <- err
				close(p.ch)
				return
			}
		}
	}()
	return p
}

func (p *readAhead) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		chunk, ok := <-p.ch
		if !ok {
			p.err = <-p.errc
			if p.err == nil {
				p.err = io.EOF
			}
			continue
		}
		p.cur = chunk
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// close stops the producer and waits for it, so that nothing it writes to
// (the blob being ingested) is used after.
func (p *readAhead) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}
