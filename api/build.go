package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/berth-dev/berth/errdefs"
)

// BuildOptions are the query parameters of the classic POST /build.
type BuildOptions struct {
	Tags        []string
	Dockerfile  string
	BuildArgs   map[string]*string
	Labels      map[string]string
	Target      string
	NoCache     bool
	Pull        bool
	Platform    string
	NetworkMode string
	// Remote is a URL to fetch the context (a tarball) or a Dockerfile
	// from when the body is empty.
	Remote string
	// CacheFrom names images whose steps may serve as cache; berth's cache
	// is content-keyed, so they are accepted and need nothing more.
	CacheFrom []string
}

// BuildResult is a finished build.
type BuildResult struct {
	ID string // "sha256:..."
}

// BuildPruneReport answers POST /build/prune.
type BuildPruneReport struct {
	CachesDeleted  []string
	SpaceReclaimed uint64
}

// BuildBackend builds images from a context tar.
type BuildBackend interface {
	// Build reads the context (a tar, possibly compressed) from body and
	// builds it, writing the classic builder's text to out; built is
	// called with the image ID before the final "Successfully built".
	Build(ctx context.Context, body io.Reader, opts BuildOptions, out io.Writer, built func(id string)) (*BuildResult, error)
	BuildPrune(ctx context.Context, all bool, keepStorage int64) (*BuildPruneReport, error)
}

// buildRoutes registers this area's routes when the backend implements them.
func (s *Server) buildRoutes() {
	b, ok := s.backend.(BuildBackend)
	if !ok {
		return
	}
	s.route("POST /build", func(w http.ResponseWriter, r *http.Request) error { return s.build(w, r, b) })
	s.route("POST /build/prune", func(w http.ResponseWriter, r *http.Request) error { return s.buildPrune(w, r, b) })
}

// buildMessage is one line of the build's JSON stream.
type buildMessage struct {
	Stream      string            `json:"stream,omitempty"`
	Aux         any               `json:"aux,omitempty"`
	ErrorDetail *buildErrorDetail `json:"errorDetail,omitempty"`
	Error       string            `json:"error,omitempty"`
}

type buildErrorDetail struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message"`
}

// streamWriter turns each write into a {"stream": ...} message.
type streamWriter struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	err error
}

func (s *streamWriter) send(m buildMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(m); err != nil {
		return err
	}
	b := bytes.TrimRight(buf.Bytes(), "\n")
	if _, err := s.w.Write(append(b, '\r', '\n')); err != nil {
		s.err = err
		return err
	}
	flush(s.w)
	return nil
}

func (s *streamWriter) Write(p []byte) (int, error) {
	if err := s.send(buildMessage{Stream: string(p)}); err != nil {
		return 0, err
	}
	return len(p), nil
}

func parseBuildOptions(r *http.Request) (BuildOptions, error) {
	q := r.URL.Query()
	opts := BuildOptions{
		Tags:        q["t"],
		Dockerfile:  q.Get("dockerfile"),
		Target:      q.Get("target"),
		NoCache:     boolValue(r, "nocache"),
		Pull:        boolValue(r, "pull"),
		Platform:    q.Get("platform"),
		NetworkMode: q.Get("networkmode"),
		Remote:      q.Get("remote"),
	}
	if v := q.Get("buildargs"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.BuildArgs); err != nil {
			return opts, errdefs.InvalidParameterf("invalid buildargs: %v", err)
		}
	}
	if v := q.Get("labels"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.Labels); err != nil {
			return opts, errdefs.InvalidParameterf("invalid labels: %v", err)
		}
	}
	if v := q.Get("cachefrom"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.CacheFrom); err != nil {
			return opts, errdefs.InvalidParameterf("invalid cachefrom: %v", err)
		}
	}
	if v := q.Get("version"); v == "2" {
		return opts, errdefs.NotImplemented(errNotImplemented("BuildKit (version=2) builds are not supported: use the classic builder (DOCKER_BUILDKIT=0)"))
	}
	return opts, nil
}

// build serves POST /build: the classic builder's JSON message stream.
// With q=1 the step output is held back and only sent on failure.
func (s *Server) build(w http.ResponseWriter, r *http.Request, b BuildBackend) error {
	opts, err := parseBuildOptions(r)
	if err != nil {
		return err
	}
	// X-Registry-Config carries credentials for pulls; berth's builder has
	// no registry access of its own, so it is decoded only to validate it.
	if h := r.Header.Get("X-Registry-Config"); h != "" {
		if _, err := base64.URLEncoding.DecodeString(h); err != nil {
			if _, err2 := base64.StdEncoding.DecodeString(h); err2 != nil {
				return errdefs.InvalidParameterf("invalid X-Registry-Config header")
			}
		}
	}
	quiet := boolValue(r, "q")
	// The stream starts while the context is still being read.
	http.NewResponseController(w).EnableFullDuplex()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	sw := &streamWriter{w: w}
	var held bytes.Buffer
	var out io.Writer = sw
	if quiet {
		out = &held
	}
	defer r.Body.Close()
	built := func(id string) { sw.send(buildMessage{Aux: map[string]string{"ID": id}}) }
	res, err := b.Build(r.Context(), r.Body, opts, out, built)
	if err != nil {
		if quiet && held.Len() > 0 {
			sw.Write(held.Bytes())
		}
		detail := &buildErrorDetail{Message: err.Error()}
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			detail.Code = ec.ExitCode()
		}
		return ignoreStreamErr(sw.send(buildMessage{ErrorDetail: detail, Error: err.Error()}))
	}
	if quiet {
		return ignoreStreamErr(sw.send(buildMessage{Stream: res.ID + "\n"}))
	}
	return nil
}

// ignoreStreamErr drops write errors: the client went away mid-stream and
// there is nobody left to answer.
func ignoreStreamErr(error) error { return nil }

// buildPrune serves POST /build/prune.
func (s *Server) buildPrune(w http.ResponseWriter, r *http.Request, b BuildBackend) error {
	q := r.URL.Query()
	var keep int64
	for _, k := range []string{"keep-storage", "reserved-space"} {
		if v := q.Get(k); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return errdefs.InvalidParameterf("invalid %s: %v", k, err)
			}
			keep = n
		}
	}
	rep, err := b.BuildPrune(r.Context(), boolValue(r, "all"), keep)
	if err != nil {
		return err
	}
	if rep.CachesDeleted == nil {
		rep.CachesDeleted = []string{}
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
