package api

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/errdefs"
)

// jsonStream writes Docker's JSON message stream: one object per line,
// "\r\n"-terminated, flushed per message.
type jsonStream struct {
	w       http.ResponseWriter
	started bool
}

func (j *jsonStream) start() {
	if !j.started {
		j.w.Header().Set("Content-Type", "application/json")
		j.w.WriteHeader(http.StatusOK)
		j.started = true
	}
}

func (j *jsonStream) send(v any) {
	j.start()
	b, _ := json.Marshal(v)
	j.w.Write(append(b, '\r', '\n'))
	flush(j.w)
}

type jsonMessage struct {
	Status      string     `json:"status,omitempty"`
	ID          string     `json:"id,omitempty"`
	ErrorDetail *jsonError `json:"errorDetail,omitempty"`
	Error       string     `json:"error,omitempty"`
}

type jsonError struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message"`
}

// imageCreate is POST /images/create: import with fromSrc (pull with
// fromImage arrives with the distribution issue).
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	src := q.Get("fromSrc")
	if src == "" {
		if img := q.Get("fromImage"); img != "" {
			ref := img
			if t := q.Get("tag"); t != "" {
				ref += ":" + t
			}
			writeError(w, errdefs.NotFoundf("No such image: %s (berth cannot pull images yet)", ref))
			return
		}
		writeError(w, errdefs.InvalidParameterf("fromSrc or fromImage is required"))
		return
	}
	if src != "-" {
		writeError(w, errdefs.NotImplementedf("import from a URL is not supported: send the tarball in the body (fromSrc=-)"))
		return
	}
	opts := ImportOptions{
		Repo:     q.Get("repo"),
		Tag:      q.Get("tag"),
		Changes:  q["changes"],
		Message:  q.Get("message"),
		Platform: q.Get("platform"),
	}
	id, err := s.b.ImportImage(r.Context(), r.Body, opts)
	if err != nil {
		writeError(w, err)
		return
	}
	(&jsonStream{w: w}).send(jsonMessage{Status: id})
}

func (s *Server) imageList(w http.ResponseWriter, r *http.Request) {
	ef, err := queryFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	// The legacy "filter" parameter is a reference filter.
	if f := r.URL.Query().Get("filter"); f != "" {
		ef.Add("reference", f)
	}
	list, err := s.b.Images(r.Context(), boolValue(r, "all"), ef)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// imageRoute dispatches /images/{name}/json|history|tag and DELETE
// /images/{name}, where name may contain slashes.
func (s *Server) imageRoute(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/images/")
	if rest == "" {
		writeErrorStatus(w, http.StatusNotFound, "page not found")
		return
	}
	if r.Method == http.MethodDelete {
		s.imageDelete(w, r, rest)
		return
	}
	i := strings.LastIndex(rest, "/")
	if i <= 0 {
		writeErrorStatus(w, http.StatusNotFound, "page not found")
		return
	}
	name, op := rest[:i], rest[i+1:]
	switch {
	case r.Method == http.MethodGet && op == "json":
		img, err := s.b.ImageInspect(r.Context(), name)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, img)
	case r.Method == http.MethodGet && op == "history":
		h, err := s.b.ImageHistory(r.Context(), name)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, h)
	case r.Method == http.MethodPost && op == "tag":
		q := r.URL.Query()
		if err := s.b.TagImage(r.Context(), name, q.Get("repo"), q.Get("tag")); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodPost && op == "push":
		writeError(w, errdefs.NotImplementedf("berth cannot push images yet"))
	default:
		writeErrorStatus(w, http.StatusNotFound, "page not found")
	}
}

func (s *Server) imageDelete(w http.ResponseWriter, r *http.Request, name string) {
	res, err := s.b.ImageDelete(r.Context(), name, boolValue(r, "force"), !boolValue(r, "noprune"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
