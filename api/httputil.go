package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
)

// statusFor is the one place where error classes become HTTP statuses.
func statusFor(err error) int {
	switch {
	case errdefs.IsNotFound(err):
		return http.StatusNotFound
	case errdefs.IsInvalidParameter(err):
		return http.StatusBadRequest
	case errdefs.IsConflict(err):
		return http.StatusConflict
	case errdefs.IsUnauthorized(err):
		return http.StatusUnauthorized
	case errdefs.IsForbidden(err):
		return http.StatusForbidden
	case errdefs.IsUnavailable(err):
		return http.StatusServiceUnavailable
	case errdefs.IsNotModified(err):
		return http.StatusNotModified
	case errdefs.IsNotImplemented(err):
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) {
	code := statusFor(err)
	if code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	writeErrorStatus(w, code, err.Error())
}

// writeErrorStatus writes Docker's error body. The Content-Type must be
// exactly application/json: the docker CLI compares the whole value.
func writeErrorStatus(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Message string `json:"message"`
	}{msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// decodeBody reads a JSON request body into v; an empty body leaves v as is.
func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := strings.Cut(ct, ";")
		if strings.TrimSpace(mt) != "application/json" {
			return errdefs.InvalidParameterf("Content-Type specified (%s) must be 'application/json'", ct)
		}
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<20))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return errdefs.InvalidParameter(fmt.Errorf("invalid JSON body: %w", err))
	}
	return nil
}

// boolValue follows Docker: false only for "", "0", "no", "false", "none".
func boolValue(r *http.Request, k string) bool {
	switch strings.ToLower(strings.TrimSpace(r.URL.Query().Get(k))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// boolValueOr is boolValue with a default when the parameter is absent.
func boolValueOr(r *http.Request, k string, def bool) bool {
	if _, ok := r.URL.Query()[k]; !ok {
		return def
	}
	return boolValue(r, k)
}

// intPtr reads an optional integer parameter.
func intPtr(r *http.Request, k string) (*int, error) {
	s := r.URL.Query().Get(k)
	if s == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return nil, errdefs.InvalidParameterf("invalid value for %s: %q", k, s)
	}
	return &n, nil
}

func queryFilters(r *http.Request) (filters.Args, error) {
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		return f, errdefs.InvalidParameter(err)
	}
	return f, nil
}

// flusher flushes w when it can.
func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{}`)
	}
	return b
}
