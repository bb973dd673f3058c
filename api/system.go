package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Builder-Version", "1")
	h.Set("Swarm", "inactive")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		return
	}
	w.Write([]byte("OK"))
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	v := s.b.Version(r.Context())
	v.APIVersion = Version
	v.MinAPIVersion = MinVersion
	for i := range v.Components {
		if v.Components[i].Name == "Engine" {
			if v.Components[i].Details == nil {
				v.Components[i].Details = map[string]string{}
			}
			v.Components[i].Details["ApiVersion"] = Version
			v.Components[i].Details["MinAPIVersion"] = MinVersion
		}
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	info, err := s.b.Info(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// events streams past then live events, one JSON object per line, flushed
// per event; with until it ends once until has passed.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
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
	ef, err := queryFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	past, live, cancel := s.b.SubscribeEvents(since, until, ef)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	enc := json.NewEncoder(w)
	for _, m := range past {
		if err := enc.Encode(m); err != nil {
			return
		}
	}
	flush(w)
	if live == nil || (!until.IsZero() && !until.After(now)) {
		return
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case m, ok := <-live:
			if !ok {
				return
			}
			if err := enc.Encode(m); err != nil {
				return
			}
			flush(w)
		case <-deadline:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// parseTime reads Docker's since/until forms: unix seconds with an optional
// fraction, RFC 3339, or a Go duration counted back from now.
func parseTime(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	var sec, nsec int64
	var frac string
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		sec = sec*10 + int64(v[i]-'0')
		i++
	}
	if i > 0 && (i == len(v) || v[i] == '.') {
		if i < len(v) {
			frac = v[i+1:]
			if len(frac) > 9 {
				frac = frac[:9]
			}
			for len(frac) < 9 {
				frac += "0"
			}
			for _, c := range frac {
				if c < '0' || c > '9' {
					return time.Time{}, errdefs.InvalidParameterf("invalid timestamp %q", v)
				}
				nsec = nsec*10 + int64(c-'0')
			}
		}
		return time.Unix(sec, nsec), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errdefs.InvalidParameterf("invalid timestamp %q", v)
}
