package api

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/filters"
	"github.com/moby/moby/api/types/volume"
)

// VolumeBackend serves /volumes.
type VolumeBackend interface {
	// VolumeCreate creates a volume, or returns the existing one of that name.
	VolumeCreate(ctx context.Context, req volume.CreateRequest) (*volume.Volume, error)
	// Volumes lists the volumes matching ef (dangling, name, driver, label).
	Volumes(ctx context.Context, ef filters.Args) ([]*volume.Volume, error)
	VolumeInspect(ctx context.Context, name string) (*volume.Volume, error)
	// VolumeRemove removes a volume; in use is a Conflict, force ignores a missing one.
	VolumeRemove(ctx context.Context, name string, force bool) error
	// VolumesPrune removes unused volumes: anonymous ones, or all with all=true.
	VolumesPrune(ctx context.Context, ef filters.Args) (*volume.PruneReport, error)
}

// volumeRoutes registers this area's routes when the backend implements them.
func (s *Server) volumeRoutes() {
	b, ok := s.backend.(VolumeBackend)
	if !ok {
		return
	}
	s.route("POST /volumes/create", func(w http.ResponseWriter, r *http.Request) error {
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
		ef, err := filterArgs(r)
		if err != nil {
			return err
		}
		vols, err := b.Volumes(r.Context(), ef)
		if err != nil {
			return err
		}
		resp := struct {
			Volumes  []*volume.Volume
			Warnings []string
		}{Volumes: vols}
		if resp.Volumes == nil {
			resp.Volumes = []*volume.Volume{}
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	})
	s.route("POST /volumes/prune", func(w http.ResponseWriter, r *http.Request) error {
		ef, err := filterArgs(r)
		if err != nil {
			return err
		}
		// Before API 1.42 prune removed named volumes too.
		if !versionAtLeast(r.Context(), "1.42") && !ef.Has("all") {
			if ef == nil {
				ef = filters.Args{}
			}
			ef.Add("all", "true")
		}
		rep, err := b.VolumesPrune(r.Context(), ef)
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
