package api

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/container"
)

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request) {
	var req container.CreateRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Config == nil {
		writeError(w, errdefs.InvalidParameterf("config cannot be empty in order to create a container"))
		return
	}
	res, err := s.b.ContainerCreate(r.Context(), r.URL.Query().Get("name"), &req)
	if err != nil {
		writeError(w, err)
		return
	}
	if res.Warnings == nil {
		res.Warnings = []string{}
	}
	writeJSON(w, http.StatusCreated, res)
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request) {
	ef, err := queryFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	limit := -1
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, errdefs.InvalidParameterf("invalid limit %q", v))
			return
		}
		limit = n
	}
	list, err := s.b.Containers(r.Context(), boolValue(r, "all"), limit, boolValue(r, "size"), ef)
	if err != nil {
		writeError(w, err)
		return
	}
	if list == nil {
		list = []container.Summary{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request) {
	res, err := s.b.ContainerInspect(r.Context(), r.PathValue("name"), boolValue(r, "size"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) containerStart(w http.ResponseWriter, r *http.Request) {
	if err := s.b.ContainerStart(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// stopTimeout reads "t" (or "timeout", as some clients send).
func stopTimeout(r *http.Request) (*int, error) {
	if t, err := intPtr(r, "t"); t != nil || err != nil {
		return t, err
	}
	return intPtr(r, "timeout")
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request) {
	t, err := stopTimeout(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.b.ContainerStop(r.Context(), r.PathValue("name"), r.URL.Query().Get("signal"), t); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request) {
	t, err := stopTimeout(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.b.ContainerRestart(r.Context(), r.PathValue("name"), r.URL.Query().Get("signal"), t); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request) {
	if err := s.b.ContainerKill(r.Context(), r.PathValue("name"), r.URL.Query().Get("signal")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) containerResize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	h, err1 := strconv.ParseUint(q.Get("h"), 10, 16)
	wd, err2 := strconv.ParseUint(q.Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		writeError(w, errdefs.InvalidParameterf("invalid resize parameters h=%q w=%q", q.Get("h"), q.Get("w")))
		return
	}
	if err := s.b.ContainerResize(r.Context(), r.PathValue("name"), uint16(h), uint16(wd)); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// containerWait answers headers at once (the docker CLI waits for them
// before it starts the container), then the exit status when it comes.
func (s *Server) containerWait(w http.ResponseWriter, r *http.Request) {
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "":
		cond = container.WaitConditionNotRunning
	case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		writeError(w, errdefs.InvalidParameterf("invalid condition: %q", cond))
		return
	}
	ch, err := s.b.ContainerWait(r.Context(), r.PathValue("name"), cond)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	select {
	case res, ok := <-ch:
		if !ok {
			res = container.WaitResponse{StatusCode: -1, Error: &container.WaitExitError{Message: "wait ended without a status"}}
		}
		writeWaitBody(w, res)
	case <-r.Context().Done():
	}
}

// writeWaitBody keeps Docker's "Error":null for a clean exit.
func writeWaitBody(w io.Writer, res container.WaitResponse) {
	type body struct {
		StatusCode int64                    `json:"StatusCode"`
		Error      *container.WaitExitError `json:"Error"`
	}
	b := body{StatusCode: res.StatusCode, Error: res.Error}
	fmt.Fprintf(w, "%s\n", mustJSON(b))
}

func (s *Server) containerRemove(w http.ResponseWriter, r *http.Request) {
	if err := s.b.ContainerRemove(r.Context(), r.PathValue("name"), boolValue(r, "force"), boolValue(r, "v")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) containerPrune(w http.ResponseWriter, r *http.Request) {
	ef, err := queryFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	rep, err := s.b.ContainersPrune(r.Context(), ef)
	if err != nil {
		writeError(w, err)
		return
	}
	if rep.ContainersDeleted == nil {
		rep.ContainersDeleted = []string{}
	}
	writeJSON(w, http.StatusOK, rep)
}

// containerLogs streams log lines: stdcopy-framed without a TTY, raw with one.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := time.Now()
	since, err := parseTime(q.Get("since"), now)
	if err != nil {
		writeError(w, err)
		return
	}
	until, err := parseTime(q.Get("until"), now)
	if err != nil {
		writeError(w, err)
		return
	}
	opts := LogsOptions{
		Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"),
		Follow: boolValue(r, "follow"), Timestamps: boolValue(r, "timestamps"),
		Tail: q.Get("tail"), Since: since, Until: until,
	}
	msgs, tty, err := s.b.ContainerLogs(r.Context(), r.PathValue("name"), opts)
	if err != nil {
		writeError(w, err)
		return
	}
	ct := "application/vnd.docker.raw-stream"
	if !tty && compareVersions(apiVersion(r), "1.42") >= 0 {
		ct = "application/vnd.docker.multiplexed-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	flush(w)
	var mu sync.Mutex
	stdout, stderr := io.Writer(w), io.Writer(w)
	if !tty {
		stdout, stderr = &stdWriter{w: w, mu: &mu, stream: 1}, &stdWriter{w: w, mu: &mu, stream: 2}
	}
	for m := range msgs {
		if m.Err != nil {
			if !tty {
				(&stdWriter{w: w, mu: &mu, stream: 3}).Write([]byte(m.Err.Error()))
			}
			return
		}
		line := m.Line
		if opts.Timestamps {
			line = append([]byte(m.Time.UTC().Format(time.RFC3339Nano)+" "), line...)
		}
		out := stdout
		if m.Stream == "stderr" {
			out = stderr
		}
		if _, err := out.Write(line); err != nil {
			return
		}
		if len(msgs) == 0 {
			flush(w)
		}
	}
}

// stdWriter frames writes with the stdcopy header: stream id, three zero
// bytes, big-endian payload length.
type stdWriter struct {
	w      io.Writer
	mu     *sync.Mutex
	stream byte
}

func (s *stdWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var hdr [8]byte
	hdr[0] = s.stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(hdr[:]); err != nil {
		return 0, err
	}
	n, err := s.w.Write(p)
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
	return n, err
}

// containerAttach hijacks the connection and hands its streams to the
// backend: "101 UPGRADED" when the client asked to upgrade, else 200.
func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var (
		conn     net.Conn
		hijacked bool
		mplex    bool
		mu       sync.Mutex
	)
	cfg := AttachConfig{
		UseStdin: boolValue(r, "stdin"), UseStdout: boolValue(r, "stdout"), UseStderr: boolValue(r, "stderr"),
		Logs: boolValue(r, "logs"), Stream: boolValue(r, "stream"), DetachKeys: q.Get("detachKeys"),
	}
	cfg.GetStreams = func(multiplexed bool) (io.ReadCloser, io.Writer, io.Writer, error) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			return nil, nil, nil, fmt.Errorf("attach: connection cannot be hijacked")
		}
		c, brw, err := hj.Hijack()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("attach: hijack: %w", err)
		}
		conn, hijacked, mplex = c, true, multiplexed
		ct := "application/vnd.docker.raw-stream"
		if multiplexed && compareVersions(apiVersion(r), "1.42") >= 0 {
			ct = "application/vnd.docker.multiplexed-stream"
		}
		status := "HTTP/1.1 200 OK"
		if r.Header.Get("Upgrade") != "" {
			status = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp"
		}
		fmt.Fprintf(c, "%s\r\nContent-Type: %s\r\nApi-Version: %s\r\nOstype: linux\r\n\r\n", status, ct, Version)
		var stdin io.ReadCloser
		if cfg.UseStdin {
			stdin = io.NopCloser(bufio.NewReader(io.MultiReader(io.LimitReader(brw.Reader, int64(brw.Reader.Buffered())), c)))
		}
		var stdout, stderr io.Writer = c, c
		if multiplexed {
			stdout, stderr = &stdWriter{w: c, mu: &mu, stream: 1}, &stdWriter{w: c, mu: &mu, stream: 2}
		}
		return stdin, stdout, stderr, nil
	}
	err := s.b.ContainerAttach(r.Context(), r.PathValue("name"), cfg)
	if !hijacked {
		if err != nil {
			writeError(w, err)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		return
	}
	if err != nil {
		if mplex {
			(&stdWriter{w: conn, mu: &mu, stream: 3}).Write([]byte(err.Error() + "\n"))
		} else {
			fmt.Fprintf(conn, "Error attaching: %s\n", err)
		}
	}
	conn.Close()
}
