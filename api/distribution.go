package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/volume"
)

// PullOptions are the parameters of POST /images/create?fromImage=.
type PullOptions struct {
	Image    string // fromImage
	Tag      string // tag (or a digest)
	Platform string
	// Auth is the raw X-Registry-Auth header.
	Auth string
}

// PushOptions are the parameters of POST /images/{name}/push.
type PushOptions struct {
	Name string
	Tag  string // "" pushes every tag of the repository
	Auth string // raw X-Registry-Auth header
}

// DiskUsage is GET /system/df's answer in the form of API versions before 1.52.
type DiskUsage struct {
	LayersSize int64               `json:"LayersSize"`
	Images     []image.Summary     `json:"Images"`
	Containers []container.Summary `json:"Containers"`
	Volumes    []volume.Volume     `json:"Volumes"`
	BuildCache []build.CacheRecord `json:"BuildCache"`
}

// DistributionBackend serves pull, push, login, save, load, export, image
// prune and disk usage. Streaming calls write Docker's JSON messages
// ("\r\n"-terminated) to out; an error returned before anything was
// written becomes a plain HTTP error, after that an errorDetail message.
type DistributionBackend interface {
	PullImage(ctx context.Context, opts PullOptions, out io.Writer) error
	PushImage(ctx context.Context, opts PushOptions, out io.Writer) error
	RegistryLogin(ctx context.Context, cfg registry.AuthConfig) (registry.AuthResponse, error)
	// ExportImages writes names as one archive (docker-archive and OCI layout in one tar).
	ExportImages(ctx context.Context, names []string, w io.Writer) error
	LoadImages(ctx context.Context, r io.Reader, quiet bool, out io.Writer) error
	// ExportContainer writes the container's root filesystem as a tar.
	ExportContainer(ctx context.Context, name string, w io.Writer) error
	ImagesPrune(ctx context.Context, ef filters.Args) (*image.PruneReport, error)
	SystemDiskUsage(ctx context.Context) (*DiskUsage, error)
}

// distributionRoutes registers this area's routes when the backend implements them.
func (s *Server) distributionRoutes() {
	b, ok := s.backend.(DistributionBackend)
	if !ok {
		return
	}
	s.route("POST /auth", func(w http.ResponseWriter, r *http.Request) error {
		var cfg registry.AuthConfig
		if err := json.NewDecoder(r.Body).Decode(&cfg); err != nil {
			return errdefs.InvalidParameterf("invalid auth request: %v", err)
		}
		res, err := b.RegistryLogin(r.Context(), cfg)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	})
	s.route("GET /images/get", func(w http.ResponseWriter, r *http.Request) error {
		return s.imageExport(b, w, r, r.URL.Query()["names"])
	})
	s.route("POST /images/load", func(w http.ResponseWriter, r *http.Request) error {
		defer r.Body.Close()
		sw := &streamWriter{w: w}
		err := b.LoadImages(r.Context(), r.Body, boolValue(r, "quiet"), sw)
		return sw.finish(err)
	})
	s.route("POST /images/prune", func(w http.ResponseWriter, r *http.Request) error {
		ef, err := filterArgs(r)
		if err != nil {
			return err
		}
		rep, err := b.ImagesPrune(r.Context(), ef)
		if err != nil {
			return err
		}
		if rep.ImagesDeleted == nil {
			rep.ImagesDeleted = []image.DeleteResponse{}
		}
		writeJSON(w, http.StatusOK, rep)
		return nil
	})
	export := func(w http.ResponseWriter, r *http.Request) error {
		return s.streamTar(w, func(tw io.Writer) error { return b.ExportContainer(r.Context(), r.PathValue("name"), tw) })
	}
	s.route("GET /containers/{name}/export", export)
	s.route("POST /containers/{name}/export", export)
	s.route("GET /system/df", func(w http.ResponseWriter, r *http.Request) error {
		du, err := b.SystemDiskUsage(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, du)
		return nil
	})
}

// imagePull serves POST /images/create?fromImage=.
func (s *Server) imagePull(b DistributionBackend, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := PullOptions{Image: q.Get("fromImage"), Tag: q.Get("tag"), Platform: q.Get("platform"), Auth: r.Header.Get("X-Registry-Auth")}
	sw := &streamWriter{w: w}
	return sw.finish(b.PullImage(r.Context(), opts, sw))
}

// imagePush serves POST /images/{name}/push.
func (s *Server) imagePush(b DistributionBackend, w http.ResponseWriter, r *http.Request, name string) error {
	opts := PushOptions{Name: name, Tag: r.URL.Query().Get("tag"), Auth: r.Header.Get("X-Registry-Auth")}
	sw := &streamWriter{w: w}
	return sw.finish(b.PushImage(r.Context(), opts, sw))
}

func (s *Server) imageExport(b DistributionBackend, w http.ResponseWriter, r *http.Request, names []string) error {
	if len(names) == 0 {
		return errdefs.InvalidParameterf("no image names given")
	}
	return s.streamTar(w, func(tw io.Writer) error { return b.ExportImages(r.Context(), names, tw) })
}

// streamTar answers with a tar produced by fn; errors before the first
// byte are plain HTTP errors, later ones cut the stream.
func (s *Server) streamTar(w http.ResponseWriter, fn func(io.Writer) error) error {
	lw := &lazyWriter{w: w, contentType: "application/x-tar"}
	err := fn(lw)
	if err != nil && lw.started {
		s.log.Warn("tar stream failed", "err", err)
		return nil
	}
	return err
}

// lazyWriter writes the 200 header only with the first byte, so an early
// failure can still be a proper HTTP error.
type lazyWriter struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", l.contentType)
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

// streamWriter is a lazily started JSON message stream, flushed per message.
type streamWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	started bool
}

func (sw *streamWriter) Write(p []byte) (int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if !sw.started {
		sw.started = true
		sw.w.Header().Set("Content-Type", "application/json")
		sw.w.WriteHeader(http.StatusOK)
	}
	n, err := sw.w.Write(p)
	flush(sw.w)
	return n, err
}

// finish turns err into an HTTP error (nothing streamed) or an error message.
func (sw *streamWriter) finish(err error) error {
	if err == nil {
		sw.mu.Lock()
		started := sw.started
		sw.mu.Unlock()
		if !started {
			sw.Write(nil)
		}
		return nil
	}
	sw.mu.Lock()
	started := sw.started
	sw.mu.Unlock()
	if !started {
		return err
	}
	writeStreamMessage(streamResponse{sw}, jsonMessage{ErrorDetail: &errorDetail{Message: err.Error()}, Error: err.Error()})
	return nil
}

// streamResponse lets writeStreamMessage write through a streamWriter.
type streamResponse struct{ sw *streamWriter }

func (r streamResponse) Header() http.Header         { return r.sw.w.Header() }
func (r streamResponse) Write(p []byte) (int, error) { return r.sw.Write(p) }
func (r streamResponse) WriteHeader(int)             {}
