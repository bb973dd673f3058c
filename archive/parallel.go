package archive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Creating files is the slowest part of an apply (each create is a
// journalled metadata change), so with ApplyOptions.Parallel small regular
// files are read from the tar on the main loop and written, with their
// metadata, by workers. Anything that depends on a file in flight (the
// same path again, a hard link, a whiteout, the final directory metadata)
// waits for the workers first, so the result is that of a sequential apply.

// maxParallelFile bounds the files handed to workers (they are buffered in memory).
const maxParallelFile = 1 << 20

type fileJob struct {
	host string
	hdr  *tar.Header
	data *bytes.Buffer
}

type writerPool struct {
	a        *applier
	jobs     chan fileJob
	inflight map[string]bool // host paths handed out since the last wait
	pending  sync.WaitGroup
	workers  sync.WaitGroup
	size     atomic.Int64
	errMu    sync.Mutex
	err      error
	bufs     sync.Pool
}

func newWriterPool(a *applier, n int) *writerPool {
	p := &writerPool{a: a, jobs: make(chan fileJob, 64), inflight: map[string]bool{}}
	p.bufs.New = func() any { return new(bytes.Buffer) }
	for i := 0; i < n; i++ {
		p.workers.Add(1)
		go p.work()
	}
	return p
}

func (p *writerPool) work() {
	defer p.workers.Done()
	for j := range p.jobs {
		if p.failed() == nil {
			if err := p.write(j); err != nil {
				p.fail(err)
			}
		}
		j.data.Reset()
		p.bufs.Put(j.data)
		p.pending.Done()
	}
}

func (p *writerPool) write(j fileJob) error {
	if err := p.a.ctx.Err(); err != nil {
		return err
	}
	fd, err := unix.Open(j.host, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("tar entry %q: %w", j.hdr.Name, &os.PathError{Op: "open", Path: j.host, Err: err})
	}
	f := os.NewFile(uintptr(fd), j.host)
	n, err := copySparse(f, j.data.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("tar entry %q: write: %w", j.hdr.Name, err)
	}
	p.size.Add(n)
	return p.a.metadata(j.host, j.hdr, true)
}

// copySparse writes b leaving holes for all-zero 128 KiB blocks, as copyFile does.
func copySparse(f *os.File, b []byte) (int64, error) {
	const block = 128 << 10
	hole := false
	for off := 0; off < len(b); off += block {
		chunk := b[off:min(off+block, len(b))]
		if allZero(chunk) {
			if _, err := f.Seek(int64(len(chunk)), io.SeekCurrent); err != nil {
				return 0, err
			}
			hole = true
			continue
		}
		if _, err := f.Write(chunk); err != nil {
			return 0, err
		}
		hole = false
	}
	if hole {
		return int64(len(b)), f.Truncate(int64(len(b)))
	}
	return int64(len(b)), nil
}

func (p *writerPool) fail(err error) {
	p.errMu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.errMu.Unlock()
}

func (p *writerPool) failed() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.err
}

// submit reads the file's content and hands it to a worker.
func (p *writerPool) submit(host string, hdr *tar.Header, r io.Reader) error {
	if err := p.failed(); err != nil {
		return err
	}
	buf := p.bufs.Get().(*bytes.Buffer)
	buf.Grow(int(hdr.Size))
	if _, err := io.CopyN(buf, r, hdr.Size); err != nil {
		p.bufs.Put(buf)
		return fmt.Errorf("tar entry %q: read: %w", hdr.Name, err)
	}
	p.inflight[host] = true
	p.pending.Add(1)
	p.jobs <- fileJob{host: host, hdr: hdr, data: buf}
	return nil
}

// wait lets every file in flight land and reports the first failure.
func (p *writerPool) wait() error {
	p.pending.Wait()
	clear(p.inflight)
	return p.failed()
}

// close stops the workers after the files in flight.
func (p *writerPool) close() error {
	err := p.wait()
	close(p.jobs)
	p.workers.Wait()
	return err
}
