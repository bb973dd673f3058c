package api

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
	"github.com/moby/moby/api/types/network"
)

// NetworkBackend is the networks area of the engine.
type NetworkBackend interface {
	NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	NetworkList(ctx context.Context, f filters.Args) ([]network.Inspect, error)
	NetworkInspect(ctx context.Context, ref string, verbose bool) (network.Inspect, error)
	NetworkRemove(ctx context.Context, ref string) error
	NetworksPrune(ctx context.Context, f filters.Args) (network.PruneReport, error)
	NetworkConnect(ctx context.Context, ref string, req network.ConnectRequest) error
	NetworkDisconnect(ctx context.Context, ref string, req network.DisconnectRequest) error
}

// networkRoutes registers this area's routes when the backend implements them.
func (s *Server) networkRoutes() {
	b, ok := s.backend.(NetworkBackend)
	if !ok {
		return
	}
	s.route("GET /networks", func(w http.ResponseWriter, r *http.Request) error {
		f, err := filterArgs(r)
		if err != nil {
			return err
		}
		list, err := b.NetworkList(r.Context(), f)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, list)
		return nil
	})
	s.route("GET /networks/{$}", func(w http.ResponseWriter, r *http.Request) error {
		list, err := b.NetworkList(r.Context(), filters.Args{})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, list)
		return nil
	})
	s.route("POST /networks/create", func(w http.ResponseWriter, r *http.Request) error {
		if err := checkJSONContentType(r); err != nil {
			return err
		}
		// CheckDuplicate: sent by clients before API 1.44; duplicates are
		// always refused now.
		var req struct {
			network.CreateRequest
			CheckDuplicate *bool `json:",omitempty"`
		}
		if err := decodeJSONBody(r.Body, &req); err != nil {
			return err
		}
		resp, err := b.NetworkCreate(r.Context(), req.CreateRequest)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, resp)
		return nil
	})
	s.route("POST /networks/prune", func(w http.ResponseWriter, r *http.Request) error {
		f, err := filterArgs(r)
		if err != nil {
			return err
		}
		rep, err := b.NetworksPrune(r.Context(), f)
		if err != nil {
			return err
		}
		if rep.NetworksDeleted == nil {
			rep.NetworksDeleted = []string{}
		}
		writeJSON(w, http.StatusOK, rep)
		return nil
	})
	s.route("GET /networks/{id}", func(w http.ResponseWriter, r *http.Request) error {
		n, err := b.NetworkInspect(r.Context(), r.PathValue("id"), boolValue(r, "verbose"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, n)
		return nil
	})
	s.route("DELETE /networks/{id}", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.NetworkRemove(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.route("POST /networks/{id}/connect", func(w http.ResponseWriter, r *http.Request) error {
		var req network.ConnectRequest
		if err := decodeJSONBody(r.Body, &req); err != nil {
			return err
		}
		if req.Container == "" {
			return errdefs.InvalidParameterf("container is required")
		}
		if err := b.NetworkConnect(r.Context(), r.PathValue("id"), req); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	s.route("POST /networks/{id}/disconnect", func(w http.ResponseWriter, r *http.Request) error {
		var req network.DisconnectRequest
		if err := decodeJSONBody(r.Body, &req); err != nil {
			return err
		}
		if req.Container == "" {
			return errdefs.InvalidParameterf("container is required")
		}
		if err := b.NetworkDisconnect(r.Context(), r.PathValue("id"), req); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
}
