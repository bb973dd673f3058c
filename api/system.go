package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/events"
)

// ping answers GET and HEAD /_ping: the docker CLI reads Api-Version here
// to negotiate (a missing header makes it fall back to 1.24).
func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Builder-Version", "1")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	h.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte("OK"))
	if err != nil {
		s.log.Debug("write ping", "err", err)
	}
	return nil
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	v := s.backend.Version(r.Context())
	v.APIVersion = Version
	v.MinAPIVersion = MinVersion
	for i := range v.Components {
		if v.Components[i].Name != "Engine" {
			continue
		}
		details := map[string]string{}
		for k, val := range v.Components[i].Details {
			details[k] = val
		}
		if details["Experimental"] == "" {
			details["Experimental"] = "false"
		}
		details["ApiVersion"] = Version
		details["MinAPIVersion"] = MinVersion
		v.Components[i].Details = details
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	info, err := s.backend.Info(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

// legacyEvent adds the status/id/from fields that API versions before
// 1.52 carry on container and image events.
type legacyEvent struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	events.Message
}

func backfill(m events.Message) any {
	switch m.Type {
	case events.ContainerEventType:
		return legacyEvent{Status: string(m.Action), ID: m.Actor.ID, From: m.Actor.Attributes["image"], Message: m}
	case events.ImageEventType:
		return legacyEvent{Status: string(m.Action), ID: m.Actor.ID, Message: m}
	}
	return m
}

// events streams GET /events: the past events the since/until window asks
// for, then live ones (one JSON object per line, flushed each) until until
// passes or the client leaves.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	since, err := parseTimestamp(q.Get("since"))
	if err != nil {
		return err
	}
	until, err := parseTimestamp(q.Get("until"))
	if err != nil {
		return err
	}
	if !since.IsZero() && !until.IsZero() && since.After(until) {
		return errdefs.InvalidParameterf("`since` time (%s) cannot be after `until` time (%s)", q.Get("since"), q.Get("until"))
	}
	ef, err := filterArgs(r)
	if err != nil {
		return err
	}
	past, live, cancel := s.backend.SubscribeEvents(since, until, ef)
	defer cancel()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	send := func(m events.Message) bool {
		if err := enc.Encode(backfill(m)); err != nil {
			return false
		}
		flush(w)
		return true
	}
	for _, m := range past {
		if !send(m) {
			return nil
		}
	}
	if live == nil || (!until.IsZero() && !until.After(time.Now())) {
		return nil
	}
	var timeout <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case m, ok := <-live:
			if !ok {
				return nil
			}
			if !until.IsZero() && time.Unix(0, m.TimeNano).After(until) {
				return nil
			}
			if !send(m) {
				return nil
			}
		case <-timeout:
			return nil
		case <-r.Context().Done():
			return nil
		}
	}
}
