package api

import (
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/api/stream"
	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types"
)

// timestampFormat is Docker's fixed-width RFC 3339 with nanoseconds.
const timestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// containerLogs streams GET /containers/{name}/logs: stdcopy frames unless
// the container has a TTY, flushed per line.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := LogsOptions{
		Stdout:     boolValue(r, "stdout"),
		Stderr:     boolValue(r, "stderr"),
		Follow:     boolValue(r, "follow"),
		Timestamps: boolValue(r, "timestamps"),
		Tail:       q.Get("tail"),
	}
	if !opts.Stdout && !opts.Stderr {
		return errdefs.InvalidParameterf("Bad parameters: you must choose at least one stream")
	}
	if opts.Tail == "" {
		opts.Tail = "all"
	}
	var err error
	if opts.Since, err = parseTimestamp(q.Get("since")); err != nil {
		return err
	}
	if opts.Until, err = parseTimestamp(q.Get("until")); err != nil {
		return err
	}
	msgs, tty, err := s.backend.ContainerLogs(r.Context(), r.PathValue("name"), opts)
	if err != nil {
		return err
	}
	// API 1.42 added a Content-Type telling the two framings apart.
	if versionAtLeast(r.Context(), "1.42") {
		ct := types.MediaTypeRawStream
		if !tty {
			ct = types.MediaTypeMultiplexedStream
		}
		w.Header().Set("Content-Type", ct)
	} else {
		// Before 1.42 Docker sent none; keep net/http from sniffing one.
		w.Header()["Content-Type"] = nil
	}
	w.WriteHeader(http.StatusOK)
	flush(w)

	write := func(t stream.StdType, p []byte) error {
		var err error
		if tty {
			_, err = w.Write(p)
		} else {
			_, err = stream.NewMux(w).WriteFrame(t, p)
		}
		flush(w)
		return err
	}
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			if m.Err != nil {
				msg := []byte(fmt.Sprintf("Error running logs job: %v\n", m.Err))
				if tty {
					write(stream.Stdout, msg)
				} else {
					write(stream.Systemerr, msg)
				}
				return nil
			}
			line := m.Line
			if opts.Timestamps {
				line = append([]byte(m.Time.UTC().Format(timestampFormat)+" "), line...)
			}
			t := stream.Stdout
			if m.Stream == "stderr" {
				t = stream.Stderr
			}
			if err := write(t, line); err != nil {
				return nil
			}
		case <-r.Context().Done():
			return nil
		}
	}
}
