package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/registry/storage"
)

// ociError is one entry of an OCI error body.
type ociError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// Challenger is an error that asks the client to authenticate: it carries
// the WWW-Authenticate value to send with the 401.
type Challenger interface {
	error
	Challenge() string
}

// httpError is an error already classified for the wire.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, code, msg string) error { return &httpError{status, code, msg} }

var (
	errUnsupported = errorf(http.StatusMethodNotAllowed, "UNSUPPORTED", "the operation is unsupported")
	errReadOnly    = errorf(http.StatusMethodNotAllowed, "UNSUPPORTED", "the registry is read-only")
	errNoDelete    = errorf(http.StatusMethodNotAllowed, "UNSUPPORTED", "deletes are disabled on this registry")
	errNotFound    = errorf(http.StatusNotFound, "NOT_FOUND", "no such endpoint")
)

// classify maps an error to its HTTP status and OCI code. Client mistakes
// never become a 500.
func classify(err error) (int, string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, he.code
	}
	var ch Challenger
	if errors.As(err, &ch) {
		return http.StatusUnauthorized, "UNAUTHORIZED"
	}
	var cr *clientReadError
	if errors.As(err, &cr) {
		return http.StatusBadRequest, "BLOB_UPLOAD_INVALID"
	}
	switch {
	case errors.Is(err, storage.ErrNameInvalid):
		return http.StatusBadRequest, "NAME_INVALID"
	case errors.Is(err, storage.ErrNameUnknown):
		return http.StatusNotFound, "NAME_UNKNOWN"
	case errors.Is(err, storage.ErrDigestInvalid):
		return http.StatusBadRequest, "DIGEST_INVALID"
	case errors.Is(err, storage.ErrBlobUnknown):
		return http.StatusNotFound, "BLOB_UNKNOWN"
	case errors.Is(err, storage.ErrUploadUnknown):
		return http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN"
	case errors.Is(err, storage.ErrUploadInvalid):
		return http.StatusBadRequest, "BLOB_UPLOAD_INVALID"
	case errors.Is(err, storage.ErrRangeInvalid):
		return http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID"
	case errors.Is(err, storage.ErrManifestUnknown):
		return http.StatusNotFound, "MANIFEST_UNKNOWN"
	case errors.Is(err, storage.ErrManifestInvalid):
		return http.StatusBadRequest, "MANIFEST_INVALID"
	case errors.Is(err, storage.ErrManifestBlobUnknown):
		return http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN"
	case errors.Is(err, storage.ErrSizeInvalid):
		return http.StatusBadRequest, "SIZE_INVALID"
	case errors.Is(err, storage.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "SIZE_INVALID"
	case errdefs.IsUnauthorized(err):
		return http.StatusUnauthorized, "UNAUTHORIZED"
	case errdefs.IsForbidden(err):
		return http.StatusForbidden, "DENIED"
	case errdefs.IsInvalidParameter(err):
		return http.StatusBadRequest, "UNSUPPORTED"
	case errdefs.IsNotFound(err):
		return http.StatusNotFound, "NOT_FOUND"
	}
	return http.StatusInternalServerError, "UNKNOWN"
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	var ch Challenger
	if errors.As(err, &ch) {
		w.Header().Set("WWW-Authenticate", ch.Challenge())
	}
	msg := err.Error()
	if status == http.StatusInternalServerError {
		s.log.Error("registry request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	}
	body, _ := json.Marshal(struct {
		Errors []ociError `json:"errors"`
	}{[]ociError{{Code: code, Message: msg}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", itoa(int64(len(body))))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
