package api

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/filters"
	"github.com/moby/moby/api/types/volume"
)

// VolumeBackend is the volumes area of the engine.
type VolumeBackend interface {
	VolumeCreate(ctx context.Context, req volume.CreateRequest) (*volume.Volume, error)
	VolumeList(ctx context.Context, f filters.Args) (*volume.ListResponse, error)
	VolumeInspect(ctx context.Context, name string) (*volume.Volume, error)
	// VolumeRemove refuses a volume in use (Conflict); force makes a
	// missing volume no error.
	VolumeRemove(ctx context.Context, name string, force bool) error
	VolumesPrune(ctx context.Context, f filters.Args) (*volume.PruneReport, error)
}

// volumeRoutes registers this area's routes when the backend implements them.
func (s *Server) volumeRoutes() {
	b, ok := s.backend.(VolumeBackend)
	if !ok {
		return
	}
	s.route("POST /volumes/create", func(w http.ResponseWriter, r *http.Request) error {
		if err := checkJSONContentType(r); err != nil {
			return err
		}
		var req volume.CreateRequest
		if err := decodeJSONBody(r.Body, &req); err != nil {
			return err
		}
		v, err := b.VolumeCreate(r.Context(), req)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, v)
		return nil
	})
	s.route("GET /volumes", func(w http.ResponseWriter, r *http.Request) error {
		f, err := filterArgs(r)
		if err != nil {
			return err
		}
		list, err := b.VolumeList(r.Context(), f)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, list)
		return nil
	})
	s.route("POST /volumes/prune", func(w http.ResponseWriter, r *http.Request) error {
		f, err := filterArgs(r)
		if err != nil {
			return err
		}
		rep, err := b.VolumesPrune(r.Context(), f)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, rep)
		return nil
	})
	s.route("GET /volumes/{name}", func(w http.ResponseWriter, r *http.Request) error {
		v, err := b.VolumeInspect(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	})
	s.route("DELETE /volumes/{name}", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.VolumeRemove(r.Context(), r.PathValue("name"), boolValue(r, "force")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
