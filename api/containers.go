package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/container"
)

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request) error {
	if err := checkJSONContentType(r); err != nil {
		return err
	}
	req, err := decodeCreateRequest(r)
	if err != nil {
		return err
	}
	// The platform query is accepted and ignored: berth runs linux/amd64 only.
	resp, err := s.backend.ContainerCreate(r.Context(), r.URL.Query().Get("name"), req)
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

// decodeCreateRequest reads the body of POST /containers/create.
func decodeCreateRequest(r *http.Request) (*container.CreateRequest, error) {
	var req container.CreateRequest
	if err := decodeJSONBody(r.Body, &req); err != nil {
		return nil, err
	}
	if req.Config == nil {
		return nil, errdefs.InvalidParameterf("config cannot be empty in order to create a container")
	}
	return &req, nil
}

func (s *Server) containerStart(w http.ResponseWriter, r *http.Request) error {
	// Old clients may send a HostConfig body; it is ignored as by Docker
	// since API 1.24.
	if err := s.backend.ContainerStart(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// stopParams reads signal (API >= 1.42) and t (seconds; "timeout" is also accepted).
func stopParams(r *http.Request) (signal string, timeout *int, err error) {
	if versionAtLeast(r.Context(), "1.42") {
		signal = r.URL.Query().Get("signal")
	}
	key := "t"
	if r.URL.Query().Get("t") == "" && r.URL.Query().Get("timeout") != "" {
		key = "timeout"
	}
	timeout, err = optionalInt(r, key)
	return signal, timeout, err
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request) error {
	signal, timeout, err := stopParams(r)
	if err != nil {
		return err
	}
	if err := s.backend.ContainerStop(r.Context(), r.PathValue("name"), signal, timeout); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request) error {
	signal, timeout, err := stopParams(r)
	if err != nil {
		return err
	}
	if err := s.backend.ContainerRestart(r.Context(), r.PathValue("name"), signal, timeout); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerResize serves POST /containers/{name}/resize?h=&w= (docker run -it
// sends it after start and on every SIGWINCH).
func (s *Server) containerResize(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	h, errH := strconv.ParseUint(q.Get("h"), 10, 16)
	wd, errW := strconv.ParseUint(q.Get("w"), 10, 16)
	if errH != nil || errW != nil {
		return errdefs.InvalidParameterf("invalid resize parameters h=%q w=%q: want integers from 0 to 65535", q.Get("h"), q.Get("w"))
	}
	if err := s.backend.ContainerResize(r.Context(), r.PathValue("name"), uint16(h), uint16(wd)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request) error {
	if err := s.backend.ContainerKill(r.Context(), r.PathValue("name"), r.URL.Query().Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// waitBody is the wait answer with "Error": null kept, as Docker writes it.
type waitBody struct {
	Error      *container.WaitExitError `json:"Error"`
	StatusCode int64                    `json:"StatusCode"`
}

// containerWait answers the headers at once (docker run blocks on them
// before it sends start), then the body when the condition is met.
func (s *Server) containerWait(w http.ResponseWriter, r *http.Request) error {
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	if cond == "" {
		cond = container.WaitConditionNotRunning
	}
	switch cond {
	case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return errdefs.InvalidParameterf("invalid condition: %q", cond)
	}
	ch, err := s.backend.ContainerWait(r.Context(), r.PathValue("name"), cond)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	select {
	case res, ok := <-ch:
		if !ok {
			return nil // the client left or the daemon is stopping
		}
		enc := json.NewEncoder(w)
		if err := enc.Encode(waitBody{Error: res.Error, StatusCode: res.StatusCode}); err != nil {
			s.log.Debug("write wait result", "err", err)
		}
	case <-r.Context().Done():
	}
	return nil
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request) error {
	ef, err := filterArgs(r)
	if err != nil {
		return err
	}
	limit, err := intValue(r, "limit", -1)
	if err != nil {
		return err
	}
	list, err := s.backend.Containers(r.Context(), boolValue(r, "all"), limit, boolValue(r, "size"), ef)
	if err != nil {
		return err
	}
	if list == nil {
		list = []container.Summary{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request) error {
	c, err := s.backend.ContainerInspect(r.Context(), r.PathValue("name"), boolValue(r, "size"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) containerDelete(w http.ResponseWriter, r *http.Request) error {
	if boolValue(r, "link") {
		return errdefs.InvalidParameterf("removing links is not supported: berth has no legacy container links")
	}
	if err := s.backend.ContainerRemove(r.Context(), r.PathValue("name"), boolValue(r, "force"), boolValue(r, "v")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerPrune(w http.ResponseWriter, r *http.Request) error {
	ef, err := filterArgs(r)
	if err != nil {
		return err
	}
	rep, err := s.backend.ContainersPrune(r.Context(), ef)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
