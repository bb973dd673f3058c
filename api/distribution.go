package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

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
	Platform string
	// AuthHeader is the raw X-Registry-Auth header.
	AuthHeader string
}

// PushOptions are the parameters of POST /images/{name}/push.
type PushOptions struct {
	AuthHeader string
}

// DistributionBackend moves images between the store, registries and
// archives. Streaming methods write Docker's JSON message stream to out;
// an error returned before anything was written is answered as a plain
// HTTP error, after that as an errorDetail message in the stream.
type DistributionBackend interface {
	PullImage(ctx context.Context, ref string, opts PullOptions, out io.Writer) error
	PushImage(ctx context.Context, ref string, opts PushOptions, out io.Writer) error
	// Login checks a credential; it returns the identity token, if any.
	Login(ctx context.Context, auth registry.AuthConfig) (string, error)
	// SaveImages writes a docker-archive (with an OCI layout) of names.
	SaveImages(ctx context.Context, names []string, w io.Writer) error
	// LoadImages reads a docker-archive or OCI layout tar.
	LoadImages(ctx context.Context, r io.Reader, quiet bool, out io.Writer) error
	ExportContainer(ctx context.Context, name string, w io.Writer) error
	PruneImages(ctx context.Context, ef filters.Args) (*image.PruneReport, error)
	DiskUsage(ctx context.Context, opts DiskUsageOptions) (*DiskUsage, error)
}

// DiskUsage is GET /system/df's answer in the form API clients up to 1.51
// read (the docker CLI's "system df").
type DiskUsage struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

// DiskUsageOptions selects the parts of GET /system/df (all when empty).
type DiskUsageOptions struct {
	Types []string
}

// distributionRoutes registers this area's routes when the backend implements them.
func (s *Server) distributionRoutes() {
	b, ok := s.backend.(DistributionBackend)
	if !ok {
		return
	}
	s.route("POST /auth", func(w http.ResponseWriter, r *http.Request) error { return s.auth(w, r, b) })
	s.route("GET /images/get", func(w http.ResponseWriter, r *http.Request) error {
		return s.imageSave(w, r, b, r.URL.Query()["names"])
	})
	s.route("POST /images/load", func(w http.ResponseWriter, r *http.Request) error { return s.imageLoad(w, r, b) })
	s.route("POST /images/prune", func(w http.ResponseWriter, r *http.Request) error { return s.imagePrune(w, r, b) })
	s.route("GET /system/df", func(w http.ResponseWriter, r *http.Request) error { return s.systemDF(w, r, b) })
	s.route("GET /containers/{name}/export", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/x-tar")
		return streamBody(w, func(out io.Writer) error { return b.ExportContainer(r.Context(), r.PathValue("name"), out) })
	})
}

// lazyStream starts the 200 JSON response on the first write, so errors
// found before any progress are plain HTTP errors, as with dockerd.
type lazyStream struct {
	w       http.ResponseWriter
	ctype   string
	started bool
}

func (l *lazyStream) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", l.ctype)
		l.w.WriteHeader(http.StatusOK)
	}
	n, err := l.w.Write(p)
	flush(l.w)
	return n, err
}

// streamJSON runs fn with a lazily started JSON message stream; a late
// error becomes an errorDetail message.
func streamJSON(w http.ResponseWriter, fn func(out io.Writer) error) error {
	ls := &lazyStream{w: w, ctype: "application/json"}
	err := fn(ls)
	if err == nil {
		if !ls.started {
			ls.Write(nil)
		}
		return nil
	}
	if !ls.started {
		return err
	}
	writeStreamMessage(w, jsonMessage{Error: err.Error(), ErrorDetail: &errorDetail{Message: err.Error()}})
	return nil
}

// streamBody is streamJSON for raw bodies: a late error just ends the body.
func streamBody(w http.ResponseWriter, fn func(out io.Writer) error) error {
	ls := &lazyStream{w: w, ctype: w.Header().Get("Content-Type")}
	err := fn(ls)
	if err != nil && !ls.started {
		w.Header().Del("Content-Type")
		return err
	}
	if !ls.started {
		ls.Write(nil)
	}
	return nil
}

// imagePull serves POST /images/create?fromImage=.
func (s *Server) imagePull(w http.ResponseWriter, r *http.Request, b DistributionBackend) error {
	q := r.URL.Query()
	ref := q.Get("fromImage")
	if tag := q.Get("tag"); tag != "" {
		if strings.HasPrefix(tag, "sha256:") {
			ref += "@" + tag
		} else {
			ref += ":" + tag
		}
	}
	opts := PullOptions{Platform: q.Get("platform"), AuthHeader: r.Header.Get("X-Registry-Auth")}
	return streamJSON(w, func(out io.Writer) error { return b.PullImage(r.Context(), ref, opts, out) })
}

// imagePush serves POST /images/{name}/push?tag=.
func (s *Server) imagePush(w http.ResponseWriter, r *http.Request, b DistributionBackend, name string) error {
	ref := name
	if tag := r.URL.Query().Get("tag"); tag != "" {
		ref += ":" + tag
	}
	opts := PushOptions{AuthHeader: r.Header.Get("X-Registry-Auth")}
	return streamJSON(w, func(out io.Writer) error { return b.PushImage(r.Context(), ref, opts, out) })
}

func (s *Server) auth(w http.ResponseWriter, r *http.Request, b DistributionBackend) error {
	var cfg registry.AuthConfig
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&cfg); err != nil {
		return errdefs.InvalidParameterf("invalid auth request: %v", err)
	}
	token, err := b.Login(r.Context(), cfg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, registry.AuthResponse{Status: "Login Succeeded", IdentityToken: token})
	return nil
}

func (s *Server) imageSave(w http.ResponseWriter, r *http.Request, b DistributionBackend, names []string) error {
	if len(names) == 0 {
		return errdefs.InvalidParameterf("no images named")
	}
	w.Header().Set("Content-Type", "application/x-tar")
	return streamBody(w, func(out io.Writer) error { return b.SaveImages(r.Context(), names, out) })
}

func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request, b DistributionBackend) error {
	defer r.Body.Close()
	quiet := boolValue(r, "quiet")
	return streamJSON(w, func(out io.Writer) error { return b.LoadImages(r.Context(), r.Body, quiet, out) })
}

func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request, b DistributionBackend) error {
	ef, err := filterArgs(r)
	if err != nil {
		return err
	}
	rep, err := b.PruneImages(r.Context(), ef)
	if err != nil {
		return err
	}
	if rep.ImagesDeleted == nil {
		rep.ImagesDeleted = []image.DeleteResponse{}
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) systemDF(w http.ResponseWriter, r *http.Request, b DistributionBackend) error {
	du, err := b.DiskUsage(r.Context(), DiskUsageOptions{Types: r.URL.Query()["type"]})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, du)
	return nil
}
