package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth/api/stream"
	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types"
	"github.com/moby/moby/api/types/container"
)

// ExecBackend serves the exec endpoints.
type ExecBackend interface {
	// ContainerExecCreate registers an exec in a running container and
	// returns its id.
	ContainerExecCreate(ctx context.Context, name string, req *container.ExecCreateRequest) (string, error)
	// ContainerExecStart starts the exec. Unless cfg.Detach, it checks the
	// exec, then calls cfg.GetStreams (which hijacks the connection) and
	// returns once the process has ended and its output is delivered. An
	// error returned after GetStreams is written to the client's stream.
	ContainerExecStart(ctx context.Context, id string, cfg ExecStartConfig) error
	ContainerExecInspect(ctx context.Context, id string) (*container.ExecInspectResponse, error)
	ContainerExecResize(ctx context.Context, id string, height, width uint16) error
}

// ExecStartConfig is one POST /exec/{id}/start.
type ExecStartConfig struct {
	Detach      bool
	ConsoleSize *[2]uint
	// GetStreams takes over the connection; multiplexed is false for a tty
	// exec, whose stdin then honours detachKeys ("" for the default).
	GetStreams func(multiplexed bool, detachKeys string) (stdin io.ReadCloser, stdout, stderr io.Writer, err error)
}

// execRoutes registers this area's routes when the backend implements them.
func (s *Server) execRoutes() {
	b, ok := s.backend.(ExecBackend)
	if !ok {
		return
	}
	s.route("POST /containers/{name}/exec", func(w http.ResponseWriter, r *http.Request) error {
		if err := checkJSONContentType(r); err != nil {
			return err
		}
		// Clients also send the deprecated Detach field.
		var req struct {
			container.ExecCreateRequest
			Detach bool
		}
		if err := decodeJSONBody(r.Body, &req); err != nil {
			return err
		}
		id, err := b.ContainerExecCreate(r.Context(), r.PathValue("name"), &req.ExecCreateRequest)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
		return nil
	})
	s.route("GET /exec/{id}/json", func(w http.ResponseWriter, r *http.Request) error {
		resp, err := b.ContainerExecInspect(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	})
	s.route("POST /exec/{id}/resize", func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		h, errH := strconv.ParseUint(q.Get("h"), 10, 16)
		wd, errW := strconv.ParseUint(q.Get("w"), 10, 16)
		if errH != nil || errW != nil {
			return errdefs.InvalidParameterf("invalid resize parameters h=%q w=%q: want integers from 0 to 65535", q.Get("h"), q.Get("w"))
		}
		if err := b.ContainerExecResize(r.Context(), r.PathValue("id"), uint16(h), uint16(wd)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	s.route("POST /exec/{id}/start", func(w http.ResponseWriter, r *http.Request) error {
		return s.execStart(w, r, b)
	})
}

// execStart serves POST /exec/{id}/start: detached, a plain answer;
// otherwise the connection is hijacked as for attach.
func (s *Server) execStart(w http.ResponseWriter, r *http.Request, b ExecBackend) error {
	var req container.ExecStartRequest
	if r.ContentLength != 0 {
		if err := decodeJSONBody(r.Body, &req); err != nil {
			return err
		}
	}
	if req.Detach {
		err := b.ContainerExecStart(r.Context(), r.PathValue("id"), ExecStartConfig{Detach: true, ConsoleSize: req.ConsoleSize})
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	_, upgrade := r.Header["Upgrade"]
	// As for attach: the exec's streams outlive the request context, which
	// net/http cancels at the client's half-close.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	untilHijack := context.AfterFunc(r.Context(), cancel)
	defer untilHijack()
	if sc, ok := r.Context().Value(serveCtxKey).(context.Context); ok {
		defer context.AfterFunc(sc, cancel)()
	}
	var (
		hc     *hijackedConn
		errOut io.Writer
	)
	getStreams := func(multiplexed bool, detachKeys string) (io.ReadCloser, io.Writer, io.Writer, error) {
		if hc != nil {
			return nil, nil, nil, errors.New("exec streams already taken")
		}
		if detachKeys == "" {
			detachKeys = stream.DefaultDetachKeys
		}
		keys, err := stream.ParseDetachKeys(detachKeys)
		if err != nil {
			return nil, nil, nil, errdefs.InvalidParameter(err)
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("hijack connection: %w", err)
		}
		untilHijack()
		hc = &hijackedConn{conn: conn, r: brw.Reader, cancel: cancel}
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
			return nil, nil, nil, fmt.Errorf("write exec response: %w", err)
		}
		var in io.Reader = hc.r
		if !multiplexed {
			in = stream.NewEscapeReader(in, keys)
		}
		stdin := &stdinReader{r: in, hc: hc}
		if !multiplexed {
			errOut = hc
			return stdin, hc, hc, nil
		}
		mux := stream.NewMux(hc)
		errOut = mux.Writer(stream.Stdout)
		return stdin, mux.Writer(stream.Stdout), mux.Writer(stream.Stderr), nil
	}
	err := b.ContainerExecStart(ctx, r.PathValue("id"), ExecStartConfig{ConsoleSize: req.ConsoleSize, GetStreams: getStreams})
	if hc == nil {
		return err
	}
	defer hc.conn.Close()
	if err != nil && !errors.Is(err, stream.ErrDetached) && ctx.Err() == nil {
		// Docker writes a failed start on the exec's stdout.
		errOut.Write([]byte(err.Error() + "\r\n"))
	}
	return nil
}
