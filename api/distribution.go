package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/moby/moby/api/types/image"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
)

// DistributionBackend is the pull, push and login area of the engine.
type DistributionBackend interface {
	// PullImage pulls ref (a name, with tag in tag or a digest in ref),
	// reporting progress. authHeader is the X-Registry-Auth header.
	PullImage(ctx context.Context, ref, tag, platform, authHeader string, progress func(jsonstream.Message)) error
	// PushImage pushes name (all its tags when tag is "").
	PushImage(ctx context.Context, name, tag, authHeader string, progress func(jsonstream.Message)) error
	// Login checks credentials against a registry (POST /auth).
	Login(ctx context.Context, cfg registry.AuthConfig) (registry.AuthResponse, error)
}

// distributionRoutes registers this area's routes when the backend implements them.
func (s *Server) distributionRoutes() {
	s.archiveRoutes()
	b, ok := s.backend.(DistributionBackend)
	if !ok {
		return
	}
	s.route("POST /auth", func(w http.ResponseWriter, r *http.Request) error {
		var cfg registry.AuthConfig
		if err := decodeJSONBody(r.Body, &cfg); err != nil {
			return err
		}
		res, err := b.Login(r.Context(), cfg)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	})
}

// progressStream writes Docker's JSON message stream: a status line per
// message, flushed, and the error as the stream's last message once the
// answer has started (a plain HTTP error before that).
type progressStream struct {
	w       http.ResponseWriter
	mu      sync.Mutex
	started bool
}

func (p *progressStream) send(m jsonstream.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start()
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	p.w.Write(append(b, '\r', '\n'))
	flush(p.w)
}

func (p *progressStream) start() {
	if !p.started {
		p.started = true
		p.w.Header().Set("Content-Type", "application/json")
		p.w.WriteHeader(http.StatusOK)
	}
}

// finish ends the stream with err: an HTTP error when nothing was sent.
func (p *progressStream) finish(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.start()
		return nil
	}
	if !p.started {
		return err
	}
	return writeStreamMessage(p.w, jsonMessage{Error: err.Error(), ErrorDetail: &errorDetail{Message: err.Error()}})
}

// pull serves POST /images/create?fromImage=.
func (s *Server) pull(w http.ResponseWriter, r *http.Request, b DistributionBackend) error {
	q := r.URL.Query()
	ps := &progressStream{w: w}
	err := b.PullImage(r.Context(), q.Get("fromImage"), q.Get("tag"), q.Get("platform"), r.Header.Get("X-Registry-Auth"), ps.send)
	return ps.finish(err)
}

// push serves POST /images/{name}/push.
func (s *Server) push(w http.ResponseWriter, r *http.Request, name string, b DistributionBackend) error {
	ps := &progressStream{w: w}
	err := b.PushImage(r.Context(), name, r.URL.Query().Get("tag"), r.Header.Get("X-Registry-Auth"), ps.send)
	return ps.finish(err)
}

// ImageArchiveBackend is save, load, export, prune and disk usage.
type ImageArchiveBackend interface {
	// SaveImages writes the images as a tar archive (docker save).
	SaveImages(ctx context.Context, names []string, w io.Writer) error
	// LoadImages reads a tar archive; each loaded image is reported with
	// its tags (or ID when untagged).
	LoadImages(ctx context.Context, r io.Reader, loaded func(msg string)) error
	// ExportContainer writes the container's filesystem as a tar.
	ExportContainer(ctx context.Context, name string, w io.Writer) error
	ImagesPrune(ctx context.Context, f filters.Args) (*image.PruneReport, error)
	// DiskUsage answers GET /system/df in the shape of API 1.50.
	DiskUsage(ctx context.Context, types []string) (any, error)
}

func (s *Server) archiveRoutes() {
	b, ok := s.backend.(ImageArchiveBackend)
	if !ok {
		return
	}
	s.route("GET /images/get", func(w http.ResponseWriter, r *http.Request) error {
		return s.save(w, r, r.URL.Query()["names"], b)
	})
	s.route("POST /images/load", func(w http.ResponseWriter, r *http.Request) error {
		defer r.Body.Close()
		quiet := boolValue(r, "quiet")
		ps := &progressStream{w: w}
		_ = quiet // docker prints the loaded names either way
		err := b.LoadImages(r.Context(), r.Body, func(msg string) {
			ps.send(jsonstream.Message{Stream: msg + "\n"})
		})
		return ps.finish(err)
	})
	s.route("GET /containers/{name}/export", func(w http.ResponseWriter, r *http.Request) error {
		return s.streamTar(w, func(out io.Writer) error { return b.ExportContainer(r.Context(), r.PathValue("name"), out) })
	})
	s.route("POST /images/prune", func(w http.ResponseWriter, r *http.Request) error {
		f, err := filterArgs(r)
		if err != nil {
			return err
		}
		rep, err := b.ImagesPrune(r.Context(), f)
		if err != nil {
			return err
		}
		if rep.ImagesDeleted == nil {
			rep.ImagesDeleted = []image.DeleteResponse{}
		}
		writeJSON(w, http.StatusOK, rep)
		return nil
	})
	s.route("GET /system/df", func(w http.ResponseWriter, r *http.Request) error {
		du, err := b.DiskUsage(r.Context(), r.URL.Query()["type"])
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, du)
		return nil
	})
}

// save serves GET /images/get and /images/{name}/get.
func (s *Server) save(w http.ResponseWriter, r *http.Request, names []string, b ImageArchiveBackend) error {
	if len(names) == 0 {
		return errdefs.InvalidParameterf("no images given (names)")
	}
	return s.streamTar(w, func(out io.Writer) error { return b.SaveImages(r.Context(), names, out) })
}

// streamTar sends a tar produced by fn; an error before the first byte is
// a plain HTTP error, after it the connection is cut.
func (s *Server) streamTar(w http.ResponseWriter, fn func(io.Writer) error) error {
	lw := &lazyWriter{w: w}
	err := fn(lw)
	if err != nil && !lw.started {
		return err
	}
	if !lw.started {
		lw.start()
	}
	if err != nil {
		panic(http.ErrAbortHandler) // a truncated tar must not look complete
	}
	return nil
}

// lazyWriter sends the headers with the first byte.
type lazyWriter struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyWriter) start() {
	l.started = true
	l.w.Header().Set("Content-Type", "application/x-tar")
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.start()
	}
	return l.w.Write(p)
}
