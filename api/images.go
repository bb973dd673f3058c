package api

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/errdefs"
)

// jsonMessage is one line of Docker's JSON message stream (pull, import...).
type jsonMessage struct {
	Status      string       `json:"status,omitempty"`
	ErrorDetail *errorDetail `json:"errorDetail,omitempty"`
	Error       string       `json:"error,omitempty"`
}

type errorDetail struct {
	Message string `json:"message"`
}

// writeStreamMessage writes one JSON message terminated by \r\n, as
// Docker's stream formatter does, and flushes it.
func writeStreamMessage(w http.ResponseWriter, m jsonMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(b, '\r', '\n')); err != nil {
		return err
	}
	flush(w)
	return nil
}

// imageCreate serves POST /images/create. Only import from the request body
// (fromSrc=-) is supported; pulling is a later feature.
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	switch {
	case q.Get("fromImage") != "":
		if b, ok := s.backend.(DistributionBackend); ok {
			return s.pull(w, r, b)
		}
		ref := q.Get("fromImage")
		if tag := q.Get("tag"); tag != "" {
			ref += ":" + tag
		}
		return errdefs.NotFoundf("No such image: %s (berth cannot pull images yet)", ref)
	case q.Get("fromSrc") == "":
		return errdefs.InvalidParameterf("fromImage or fromSrc is required")
	case q.Get("fromSrc") != "-":
		return errdefs.NotImplemented(errNotImplemented("importing from a URL is not supported; send the tarball as the request body (fromSrc=-)"))
	}
	message := q.Get("message")
	if message == "" {
		message = "Imported from " + q.Get("fromSrc")
	}
	repo, tag := splitRepoTag(q.Get("repo"), q.Get("tag"))
	opts := ImportOptions{
		Repo:     repo,
		Tag:      tag,
		Changes:  q["changes"],
		Message:  message,
		Platform: q.Get("platform"),
	}
	defer r.Body.Close()
	id, err := s.backend.ImportImage(r.Context(), r.Body, opts)
	if err != nil {
		// Nothing was streamed yet: a plain HTTP error is what clients expect.
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return writeStreamMessage(w, jsonMessage{Status: id})
}

func (s *Server) imageList(w http.ResponseWriter, r *http.Request) error {
	ef, err := filterArgs(r)
	if err != nil {
		return err
	}
	// Before 1.41 a single reference could be given as "filter".
	if f := r.URL.Query().Get("filter"); f != "" && !versionAtLeast(r.Context(), "1.41") {
		ef.Add("reference", f)
	}
	imgs, err := s.backend.Images(r.Context(), boolValue(r, "all"), ef)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, imgs)
	return nil
}

// splitImagePath splits "/images/<name>/<action>" where name may contain
// slashes: the action is the last path element.
func splitImagePath(p string) (name, action string, ok bool) {
	rest := strings.TrimPrefix(p, "/images/")
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// imageGet serves GET /images/{name...}/json and /history.
func (s *Server) imageGet(w http.ResponseWriter, r *http.Request) error {
	name, action, ok := splitImagePath(r.URL.Path)
	if !ok {
		return errPageNotFound
	}
	switch action {
	case "json":
		img, err := s.backend.ImageInspect(r.Context(), name)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, img)
	case "get":
		b, ok := s.backend.(ImageArchiveBackend)
		if !ok {
			return errPageNotFound
		}
		return s.save(w, r, []string{name}, b)
	case "history":
		hist, err := s.backend.ImageHistory(r.Context(), name)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, hist)
	default:
		return errPageNotFound
	}
	return nil
}

// imagePost serves POST /images/{name...}/tag (and refuses push).
func (s *Server) imagePost(w http.ResponseWriter, r *http.Request) error {
	name, action, ok := splitImagePath(r.URL.Path)
	if ok && action == "push" {
		b, isDist := s.backend.(DistributionBackend)
		if !isDist {
			return errdefs.NotImplemented(errNotImplemented("pushing images is not supported"))
		}
		return s.push(w, r, name, b)
	}
	if !ok || action != "tag" {
		return errPageNotFound
	}
	q := r.URL.Query()
	if q.Get("repo") == "" {
		return errdefs.InvalidParameterf("repository name (repo) is required")
	}
	if err := s.backend.TagImage(r.Context(), name, q.Get("repo"), q.Get("tag")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// imageDelete serves DELETE /images/{name...}.
func (s *Server) imageDelete(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if name == "" {
		return errPageNotFound
	}
	res, err := s.backend.ImageDelete(r.Context(), name, boolValue(r, "force"), !boolValue(r, "noprune"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// splitRepoTag moves a tag written into repo ("host:5000/a/b:v1", as the Go
// client sends it) into tag, unless a tag was given separately.
func splitRepoTag(repo, tag string) (string, string) {
	if tag != "" || strings.Contains(repo, "@") {
		return repo, tag
	}
	slash := strings.LastIndexByte(repo, '/')
	if colon := strings.LastIndexByte(repo, ':'); colon > slash {
		return repo[:colon], repo[colon+1:]
	}
	return repo, tag
}
