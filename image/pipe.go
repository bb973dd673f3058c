package image

import (
	"io"
	"sync"
)

// asyncReader reads r in its own goroutine, up to depth chunks ahead, so
// that the stages of a layer ingest (network and blob write, decompression,
// unpacking) run on different cores instead of taking turns.
type asyncReader struct {
	ch   chan chunk
	done chan struct{}
	once sync.Once
	cur  []byte
	buf  *[]byte
	err  error
	pool *sync.Pool
}

type chunk struct {
	buf *[]byte
	n   int
	err error
}

const pipeChunk = 256 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, pipeChunk); return &b }}

func newAsyncReader(r io.Reader, depth int) *asyncReader {
	a := &asyncReader{ch: make(chan chunk, depth), done: make(chan struct{}), pool: &chunkPool}
	go func() {
		defer close(a.ch)
		for {
			bp := a.pool.Get().(*[]byte)
			n, err := io.ReadFull(r, *bp)
			if err == io.ErrUnexpectedEOF {
				err = io.EOF // a short last chunk
			}
			select {
			case a.ch <- chunk{buf: bp, n: n, err: err}:
			case <-a.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return a
}

func (a *asyncReader) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.err != nil {
			return 0, a.err
		}
		if a.buf != nil {
			a.pool.Put(a.buf)
			a.buf = nil
		}
		c, ok := <-a.ch
		if !ok {
			if a.err == nil {
				a.err = io.ErrClosedPipe
			}
			return 0, a.err
		}
		a.buf, a.cur, a.err = c.buf, (*c.buf)[:c.n], c.err
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

// Close stops the goroutine; it may still be blocked in r.Read, which the
// caller unblocks by closing r.
func (a *asyncReader) Close() error {
	a.once.Do(func() { close(a.done) })
	return nil
}
