package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/filters"
)

type ctxKey int

const (
	versionKey  ctxKey = iota
	serveCtxKey        // the context Serve was called with
)

// APIVersion returns the API version a request was made with (the
// /v1.NN/ prefix, or Version for unversioned paths).
func APIVersion(ctx context.Context) string {
	if v, ok := ctx.Value(versionKey).(string); ok {
		return v
	}
	return Version
}

// statusFromError maps an error class to its HTTP status; the only place
// this decision is made.
func statusFromError(err error) int {
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

// errorResponse is Docker's error body.
type errorResponse struct {
	Message string `json:"message"`
}

// writeError answers err as {"message": ...} with the status of its class.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusFromError(err)
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	if status == http.StatusNotModified {
		// A 304 carries no body.
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, errorResponse{Message: err.Error()})
}

// writeJSON writes v as the JSON body with Content-Type exactly
// "application/json" (the docker CLI compares the whole header value).
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		fmt.Fprintf(&buf, "{\"message\":%q}\n", "encode response: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// boolValue is Docker's rule for boolean query parameters: false only for
// "", "0", "no", "false" and "none" (any case); anything else is true, so
// docker-py's "True"/"False" work.
func boolValue(r *http.Request, key string) bool {
	return parseBool(r.URL.Query().Get(key))
}

func parseBool(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// intValue parses an integer query parameter; absent gives def.
func intValue(r *http.Request, key string, def int) (int, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errdefs.InvalidParameterf("invalid value for %s: %q is not an integer", key, v)
	}
	return n, nil
}

// optionalInt parses an integer query parameter that may be absent (nil).
func optionalInt(r *http.Request, key string) (*int, error) {
	if r.URL.Query().Get(key) == "" {
		return nil, nil
	}
	n, err := intValue(r, key, 0)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// filterArgs parses the filters query parameter (both JSON forms).
func filterArgs(r *http.Request) (filters.Args, error) {
	return filters.FromJSON(r.URL.Query().Get("filters"))
}

// parseTimestamp reads Docker's "seconds[.nanoseconds]" query timestamps;
// "" is the zero time.
func parseTimestamp(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	secStr, nanoStr, hasNanos := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil || secStr == "" || strings.HasPrefix(secStr, "+") {
		return time.Time{}, errdefs.InvalidParameterf("invalid timestamp %q: want seconds[.nanoseconds] since the epoch", v)
	}
	var nanos int64
	if hasNanos {
		if nanoStr == "" || len(nanoStr) > 9 || strings.Trim(nanoStr, "0123456789") != "" {
			return time.Time{}, errdefs.InvalidParameterf("invalid timestamp %q: want seconds[.nanoseconds] since the epoch", v)
		}
		nanos, _ = strconv.ParseInt(nanoStr+strings.Repeat("0", 9-len(nanoStr)), 10, 64)
	}
	if sec < 0 {
		nanos = -nanos
	}
	return time.Unix(sec, nanos), nil
}

// checkJSONContentType enforces Docker's rule: a request body must be
// declared as application/json; no Content-Type is fine without a body.
func checkJSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" && (r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0) {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return errdefs.InvalidParameterf("Content-Type specified (%s) must be 'application/json'", ct)
	}
	return nil
}

// legacyFields are fields older API versions accepted that the current
// types no longer carry; they are ignored rather than refused.
var legacyFields = map[string]bool{
	"MacAddress": true, "KernelMemory": true, "KernelMemoryTCP": true,
	// docker-py (docker-compose 1.29's SDK) sends the container ID in the
	// exec create body; dockerd ignores it.
	"Container": true,
}

// maxBodySize bounds JSON request bodies.
const maxBodySize = 8 << 20

// decodeJSONBody decodes one JSON value from the body into v. Malformed JSON,
// trailing data and unknown fields are client errors (400).
func decodeJSONBody(r io.Reader, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, maxBodySize+1))
	if err != nil {
		return errdefs.InvalidParameterf("read request body: %v", err)
	}
	if len(data) > maxBodySize {
		return errdefs.InvalidParameterf("request body larger than %d bytes", maxBodySize)
	}
	return decodeJSON(data, v)
}

func decodeJSON(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errdefs.InvalidParameterf("invalid JSON: empty request body")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err != nil {
		if field, ok := unknownField(err); ok && legacyFields[field] {
			// Retry leniently: the only surprises are known legacy fields.
			dec = json.NewDecoder(bytes.NewReader(data))
			err = dec.Decode(v)
		}
	}
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid JSON: %w", err))
	}
	if dec.More() {
		return errdefs.InvalidParameterf("invalid JSON: unexpected content after the JSON value")
	}
	return nil
}

// unknownField extracts the name from encoding/json's unknown-field error.
func unknownField(err error) (string, bool) {
	const prefix = "json: unknown field \""
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return "", false
	}
	return strings.TrimSuffix(strings.TrimPrefix(msg, prefix), "\""), true
}

// flush sends buffered headers and data to the client now.
func flush(w http.ResponseWriter) {
	if err := http.NewResponseController(w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return
	}
}

type errNotImplemented string

func (e errNotImplemented) Error() string { return string(e) }

// errPageNotFound is Docker's answer to an unknown route.
var errPageNotFound = errdefs.NotFound(errors.New("page not found"))
