package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth/api/stream"
	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types"
)

// containerAttach serves POST /containers/{name}/attach. The backend checks
// the container first (errors before the hijack are plain HTTP errors), then
// calls GetStreams, which takes over the connection: 101 UPGRADED (or 200
// for clients that did not ask for an upgrade), then raw or stdcopy-framed
// output, and the client's bytes as stdin.
func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	detachKeys := q.Get("detachKeys")
	if detachKeys == "" {
		detachKeys = stream.DefaultDetachKeys
	}
	keys, err := stream.ParseDetachKeys(detachKeys)
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	_, upgrade := r.Header["Upgrade"]
	useStdin := boolValue(r, "stdin")

	// The attach lives as long as the container's streams, the client's
	// connection, or the daemon: whichever ends first. It is not a child of
	// the request context: once hijacked, net/http cancels that context as
	// soon as a read sees EOF, and EOF is only the client's half-close
	// (docker run sends it at once when stdin is not attached).
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	untilHijack := context.AfterFunc(r.Context(), cancel)
	defer untilHijack()
	if sc, ok := r.Context().Value(serveCtxKey).(context.Context); ok {
		defer context.AfterFunc(sc, cancel)()
	}

	var (
		hc     *hijackedConn
		muxOut bool
	)
	getStreams := func(multiplexed bool) (io.ReadCloser, io.Writer, io.Writer, error) {
		if hc != nil {
			return nil, nil, nil, errors.New("attach streams already taken")
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("hijack connection: %w", err)
		}
		untilHijack()
		hc = &hijackedConn{conn: conn, r: brw.Reader, cancel: cancel}
		// Whatever ends the attach (detach keys, a dead client, shutdown)
		// also closes the connection, even if the backend is still blocked
		// reading stdin.
		context.AfterFunc(ctx, func() { conn.Close() })
		_ = conn.SetDeadline(time.Time{})
		contentType := types.MediaTypeRawStream
		var head string
		if upgrade {
			if multiplexed && versionAtLeast(ctx, "1.42") {
				contentType = types.MediaTypeMultiplexedStream
			}
			head = "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + contentType + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
		} else {
			head = "HTTP/1.1 200 OK\r\nContent-Type: " + contentType + "\r\n\r\n"
		}
		if _, err := hc.Write([]byte(head)); err != nil {
			return nil, nil, nil, fmt.Errorf("write attach response: %w", err)
		}
		muxOut = multiplexed

		var stdin io.ReadCloser
		if useStdin {
			var in io.Reader = hc.r
			if !multiplexed {
				// Docker honours the detach keys on TTY containers only.
				in = stream.NewEscapeReader(in, keys)
			}
			stdin = &stdinReader{r: in, hc: hc}
		} else {
			// Nobody reads the connection, so watch it for a reset: a
			// half-close (EOF) is normal, docker run sends one at once.
			go hc.watch()
		}
		if !multiplexed {
			return stdin, hc, hc, nil
		}
		mux := stream.NewMux(hc)
		return stdin, mux.Writer(stream.Stdout), mux.Writer(stream.Stderr), nil
	}

	cfg := AttachConfig{
		GetStreams: getStreams,
		UseStdin:   useStdin,
		UseStdout:  boolValue(r, "stdout"),
		UseStderr:  boolValue(r, "stderr"),
		Logs:       boolValue(r, "logs"),
		Stream:     boolValue(r, "stream"),
		DetachKeys: detachKeys,
	}
	err = s.backend.ContainerAttach(ctx, r.PathValue("name"), cfg)
	if hc == nil {
		// Not hijacked: answer like any other request.
		return err
	}
	defer hc.conn.Close()
	if err != nil && !errors.Is(err, stream.ErrDetached) && ctx.Err() == nil {
		s.log.Debug("attach ended with error", "container", r.PathValue("name"), "err", err)
		if muxOut {
			stream.NewMux(hc).WriteFrame(stream.Systemerr, []byte(err.Error()+"\n"))
		} else {
			hc.Write([]byte("Error: " + err.Error() + "\r\n"))
		}
	}
	return nil
}

// hijackedConn is the client connection after the hijack. A failed write
// means the client is gone, which ends the attach (the container lives on).
type hijackedConn struct {
	conn   net.Conn
	r      *bufio.Reader // holds bytes the client sent right after the request
	cancel context.CancelFunc
	mu     sync.Mutex
}

func (h *hijackedConn) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, err := h.conn.Write(p)
	if err != nil {
		h.cancel()
	}
	return n, err
}

// watch reads and discards client bytes until the connection fails.
func (h *hijackedConn) watch() {
	_, err := io.Copy(io.Discard, h.r)
	if err != nil {
		h.cancel()
	}
}

// stdinReader is the container's stdin from the client. EOF is a
// half-close: output keeps flowing. The detach sequence or a broken
// connection ends the attach.
type stdinReader struct {
	r  io.Reader
	hc *hijackedConn
}

func (s *stdinReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		// Detach keys or a broken connection: end the attach, but do not
		// report EOF, which would close a StdinOnce container's stdin.
		s.hc.cancel()
	}
	return n, err
}

// Close does not close the connection: output may still be flowing; the
// handler closes it when the attach ends.
func (s *stdinReader) Close() error { return nil }
