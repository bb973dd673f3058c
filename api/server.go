package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Version is the newest Engine API version berth speaks; MinVersion the oldest.
const (
	Version    = "1.50"
	MinVersion = "1.24"
)

// Server serves the Engine API for a backend.
type Server struct {
	handler http.Handler
	log     *slog.Logger
	b       Backend
}

// New builds the API server.
func New(b Backend, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{b: b, log: log}
	s.handler = s.withVersion(s.routes())
	return s
}

// Handler is the root HTTP handler (useful in tests with httptest).
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on l until ctx is done; in-flight streams are then cut.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			hs.Close()
		case <-done:
		}
	}()
	err := hs.Serve(l)
	close(done)
	if errors.Is(err, http.ErrServerClosed) {
		return ctx.Err()
	}
	return err
}

func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /_ping", s.ping)
	m.HandleFunc("HEAD /_ping", s.ping)
	m.HandleFunc("GET /version", s.version)
	m.HandleFunc("GET /info", s.info)
	m.HandleFunc("GET /events", s.events)

	m.HandleFunc("POST /images/create", s.imageCreate)
	m.HandleFunc("GET /images/json", s.imageList)
	// Image names contain slashes, so the image routes parse the path themselves.
	m.HandleFunc("/images/", s.imageRoute)

	m.HandleFunc("POST /containers/create", s.containerCreate)
	m.HandleFunc("GET /containers/json", s.containerList)
	m.HandleFunc("POST /containers/prune", s.containerPrune)
	m.HandleFunc("GET /containers/{name}/json", s.containerInspect)
	m.HandleFunc("POST /containers/{name}/start", s.containerStart)
	m.HandleFunc("POST /containers/{name}/stop", s.containerStop)
	m.HandleFunc("POST /containers/{name}/kill", s.containerKill)
	m.HandleFunc("POST /containers/{name}/restart", s.containerRestart)
	m.HandleFunc("POST /containers/{name}/wait", s.containerWait)
	m.HandleFunc("POST /containers/{name}/attach", s.containerAttach)
	m.HandleFunc("POST /containers/{name}/resize", s.containerResize)
	m.HandleFunc("GET /containers/{name}/logs", s.containerLogs)
	m.HandleFunc("DELETE /containers/{name}", s.containerRemove)

	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErrorStatus(w, http.StatusNotFound, "page not found")
	})
	return m
}

var versionPrefix = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

type ctxKey int

const versionKey ctxKey = 0

// withVersion strips a /v1.NN prefix, checks the version against the
// supported range, records it in the request context and sets the headers
// Docker puts on every response.
func (s *Server) withVersion(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Api-Version", Version)
		h.Set("Ostype", "linux")
		h.Set("Docker-Experimental", "false")
		h.Set("Server", "berth")
		v := Version
		if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
			v = m[1]
			switch {
			case compareVersions(v, Version) > 0:
				writeErrorStatus(w, http.StatusBadRequest, "client version "+v+" is too new. Maximum supported API version is "+Version)
				return
			case compareVersions(v, MinVersion) < 0:
				writeErrorStatus(w, http.StatusBadRequest, "client version "+v+" is too old. Minimum supported API version is "+MinVersion+", please upgrade your client to a newer version")
				return
			}
			r2 := r.Clone(context.WithValue(r.Context(), versionKey, v))
			r2.URL.Path = m[2]
			r2.URL.RawPath = ""
			r = r2
		} else {
			r = r.WithContext(context.WithValue(r.Context(), versionKey, v))
		}
		start := time.Now()
		next.ServeHTTP(w, r)
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "version", v, "duration", time.Since(start))
	})
}

// apiVersion is the version the request was made with.
func apiVersion(r *http.Request) string {
	if v, ok := r.Context().Value(versionKey).(string); ok {
		return v
	}
	return Version
}

// compareVersions compares dotted numeric versions.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x = atoiSafe(as[i])
		}
		if i < len(bs) {
			y = atoiSafe(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func atoiSafe(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return n
		}
		n = n*10 + int(c-'0')
		if n > 1e6 {
			return n
		}
	}
	return n
}
