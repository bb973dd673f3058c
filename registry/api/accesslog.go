package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"
)

type reqInfoKey struct{}

// reqInfo carries what the access log and metrics learn while serving.
type reqInfo struct{ route string }

func setRouteLabel(r *http.Request, route string) {
	if ri, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		ri.route = route
	}
}

// recorder captures the status and size of a response. It forwards
// ReadFrom so that blob downloads keep using sendfile.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

func (rec *recorder) ReadFrom(r io.Reader) (int64, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := rec.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{rec.ResponseWriter}, r)
	}
	rec.bytes += n
	return n, err
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// countingBody counts request body bytes read by the handler.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		// The client went away or sent a malformed body: its fault, not
		// a server error.
		err = &clientReadError{err}
	}
	return n, err
}

// clientReadError marks a failure to read the request body.
type clientReadError struct{ err error }

func (e *clientReadError) Error() string { return "reading request body: " + e.err.Error() }
func (e *clientReadError) Unwrap() error { return e.err }

func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &reqInfo{route: "other"}
		r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri))
		body := &countingBody{ReadCloser: r.Body}
		r.Body = body
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		d := time.Since(start)
		s.metrics.observe(r.Method, ri.route, rec.status, d, body.n, rec.bytes)
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		user, _, _ := r.BasicAuth()
		s.log.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", ri.route),
			slog.Int("status", rec.status),
			slog.Int64("bytes_in", body.n),
			slog.Int64("bytes_out", rec.bytes),
			slog.Duration("duration", d),
			slog.String("remote", r.RemoteAddr),
			slog.String("user", user),
			slog.String("user_agent", r.UserAgent()),
		)
	})
}
