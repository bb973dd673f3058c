package api

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

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
