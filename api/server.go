package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
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
}

// New builds the API server.
func New(b Backend, log *slog.Logger) *Server {
	return &Server{handler: http.NotFoundHandler(), log: log}
}

// Handler is the root HTTP handler (useful in tests with httptest).
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on l until ctx is done; in-flight streams are then cut.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	return errors.New("api: not implemented yet")
}
