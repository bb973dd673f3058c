package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
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
	backend Backend
	mux     *http.ServeMux
	server  string // value of the Server header
}

// New builds the API server.
func New(b Backend, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, backend: b, mux: http.NewServeMux()}
	engine := b.Version(context.Background()).Version
	if engine == "" {
		engine = "dev"
	}
	s.server = "Berth/" + engine + " (linux)"
	s.routes()
	s.handler = http.HandlerFunc(s.serveHTTP)
	return s
}

// Handler is the root HTTP handler (useful in tests with httptest).
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on l until ctx is done; in-flight streams are then cut.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		// Request contexts derive from ctx, so shutting down ends every
		// stream, including hijacked attach connections.
		BaseContext: func(net.Listener) context.Context { return context.WithValue(ctx, serveCtxKey, ctx) },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// route registers h for a Go 1.22 mux pattern such as "POST /containers/{name}/start".
func (s *Server) route(pattern string, h func(http.ResponseWriter, *http.Request) error) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) routes() {
	// system
	s.route("GET /_ping", s.ping)
	s.route("HEAD /_ping", s.ping)
	s.route("GET /version", s.version)
	s.route("GET /info", s.info)
	s.route("GET /events", s.events)

	// images: names contain slashes, so /images/{name}/json and friends are
	// split by hand (a mux wildcard cannot sit in the middle of a path).
	s.route("POST /images/create", s.imageCreate)
	s.route("GET /images/json", s.imageList)
	s.route("GET /images/", s.imageGet)
	s.route("POST /images/", s.imagePost)
	s.route("DELETE /images/{name...}", s.imageDelete)

	// containers
	s.route("POST /containers/create", s.containerCreate)
	s.route("GET /containers/json", s.containerList)
	s.route("POST /containers/prune", s.containerPrune)
	s.route("GET /containers/{name}/json", s.containerInspect)
	s.route("POST /containers/{name}/start", s.containerStart)
	s.route("POST /containers/{name}/stop", s.containerStop)
	s.route("POST /containers/{name}/kill", s.containerKill)
	s.route("POST /containers/{name}/restart", s.containerRestart)
	s.route("POST /containers/{name}/wait", s.containerWait)
	s.route("POST /containers/{name}/attach", s.containerAttach)
	s.route("POST /containers/{name}/resize", s.containerResize)
	s.route("GET /containers/{name}/logs", s.containerLogs)
	s.route("DELETE /containers/{name}", s.containerDelete)

	// Areas with their own backend interfaces, each in its own file. An
	// area's routes are registered only when the backend implements it.
	s.distributionRoutes()  // distribution.go: pull, push, save, load, prune, df, auth
	s.buildRoutes()         // build.go: POST /build, /build/prune
	s.networkRoutes()       // networks.go: /networks/...
	s.volumeRoutes()        // volumes.go: /volumes/...
	s.execRoutes()          // exec.go: /containers/{name}/exec, /exec/{id}/...
	s.containerMoreRoutes() // containers_more.go: pause, rename, update, top, stats, archive, commit, ...

	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorResponse{Message: "page not found"})
	})
}

var versionPrefix = regexp.MustCompile(`^/v([0-9.]+)(/.*)$`)

// serveHTTP is the version middleware: it sets the headers Docker puts on
// every response, strips and checks a /v1.NN prefix and records the version
// in the request context.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Server", s.server)
	h.Set("Api-Version", Version)
	h.Set("Ostype", "linux")
	h.Set("Docker-Experimental", "false")

	// ServeMux would answer a path that is not clean ("/v//_ping") with a
	// redirect; Docker's router knows no such route.
	if p := r.URL.Path; p != "/" && path.Clean(p) != p {
		writeJSON(w, http.StatusNotFound, errorResponse{Message: "page not found"})
		return
	}
	version := Version
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		version = m[1]
		if err := checkVersion(version); err != nil {
			s.writeError(w, r, err)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = m[2]
		if r.URL.RawPath != "" {
			r2.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, "/v"+version)
		}
		r = r2
	}
	start := time.Now()
	r = r.WithContext(context.WithValue(r.Context(), versionKey, version))
	s.mux.ServeHTTP(w, r)
	// Logged when done, with the time it took (streams: until they end).
	s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "version", version, "took", time.Since(start))
}

// checkVersion refuses versions outside [MinVersion, Version] with Docker's messages.
func checkVersion(v string) error {
	if compareVersions(v, Version) > 0 {
		return errdefs.InvalidParameter(fmt.Errorf("client version %s is too new. Maximum supported API version is %s", v, Version))
	}
	if compareVersions(v, MinVersion) < 0 {
		return errdefs.InvalidParameter(fmt.Errorf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, MinVersion))
	}
	return nil
}

// compareVersions compares dotted versions numerically ("1.9" < "1.41");
// missing or non-numeric parts count as 0.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
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

// versionAtLeast reports whether the request's API version is >= v.
func versionAtLeast(ctx context.Context, v string) bool {
	return compareVersions(APIVersion(ctx), v) >= 0
}
