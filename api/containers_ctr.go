package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/moby/moby/api/types/container"
)

// ContainerCtrBackend serves pause, unpause, top and stats.
type ContainerCtrBackend interface {
	ContainerPause(ctx context.Context, name string) error
	ContainerUnpause(ctx context.Context, name string) error
	// ContainerTop lists the container's processes as ps psArgs ("" for -ef) shows them.
	ContainerTop(ctx context.Context, name, psArgs string) (*container.TopResponse, error)
	// ContainerStats calls emit with one sample (stream false), or one a
	// second until ctx ends or emit fails. oneShot skips the wait for a
	// second sample that fills precpu_stats.
	ContainerStats(ctx context.Context, name string, stream, oneShot bool, emit func(*container.StatsResponse) error) error
}

// containerCtrRoutes registers pause, unpause, top and stats.
func (s *Server) containerCtrRoutes() {
	b, ok := s.backend.(ContainerCtrBackend)
	if !ok {
		return
	}
	s.route("POST /containers/{name}/pause", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.ContainerPause(r.Context(), r.PathValue("name")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.route("POST /containers/{name}/unpause", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.ContainerUnpause(r.Context(), r.PathValue("name")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.route("GET /containers/{name}/top", func(w http.ResponseWriter, r *http.Request) error {
		resp, err := b.ContainerTop(r.Context(), r.PathValue("name"), r.URL.Query().Get("ps_args"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	})
	s.route("GET /containers/{name}/stats", func(w http.ResponseWriter, r *http.Request) error {
		stream := true
		if v := r.URL.Query().Get("stream"); v != "" {
			stream = boolValue(r, "stream")
		}
		oneShot := boolValue(r, "one-shot")
		wrote := false
		enc := json.NewEncoder(w)
		rc := http.NewResponseController(w)
		err := b.ContainerStats(r.Context(), r.PathValue("name"), stream, oneShot, func(st *container.StatsResponse) error {
			if !wrote {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				wrote = true
			}
			if err := enc.Encode(st); err != nil {
				return err
			}
			return rc.Flush()
		})
		if err != nil && !wrote {
			return err
		}
		return nil
	})
}
