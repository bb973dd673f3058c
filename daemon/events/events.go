// Package events is the daemon's event bus: it timestamps events, keeps the
// most recent ones for `since` queries, and fans them out to subscribers
// without ever blocking the publisher.
package events

import (
	"sync"
	"time"

	"github.com/berth-dev/berth/filters"
	"github.com/moby/moby/api/types/events"
)

// keep is how many past events are kept for `since` queries.
const keep = 1024

// subscriberBuffer is how many events a slow subscriber may lag before
// events are dropped for it (the publisher never waits).
const subscriberBuffer = 256

// Bus publishes events to subscribers.
type Bus struct {
	mu   sync.Mutex
	ring []events.Message
	subs map[*subscriber]struct{}
}

type subscriber struct {
	ch     chan events.Message
	filter filters.Args
}

// New returns an empty bus.
func New() *Bus { return &Bus{subs: map[*subscriber]struct{}{}} }

// Publish records an event of type t, action and actor, now.
func (b *Bus) Publish(t events.Type, action events.Action, id string, attrs map[string]string) {
	now := time.Now()
	m := events.Message{
		Type:     t,
		Action:   action,
		Actor:    events.Actor{ID: id, Attributes: attrs},
		Scope:    "local",
		Time:     now.Unix(),
		TimeNano: now.UnixNano(),
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ring) == keep {
		copy(b.ring, b.ring[1:])
		b.ring = b.ring[:keep-1]
	}
	b.ring = append(b.ring, m)
	for s := range b.subs {
		if !Match(m, s.filter) {
			continue
		}
		select {
		case s.ch <- m:
		default: // too slow: drop rather than block the daemon
		}
	}
}

// Subscribe returns past events in [since, until] matching ef and, unless
// until is in the past, a channel of future matching events.
func (b *Bus) Subscribe(since, until time.Time, ef filters.Args) ([]events.Message, <-chan events.Message, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var past []events.Message
	if !since.IsZero() {
		for _, m := range b.ring {
			t := time.Unix(0, m.TimeNano)
			if t.Before(since) || (!until.IsZero() && t.After(until)) {
				continue
			}
			if Match(m, ef) {
				past = append(past, m)
			}
		}
	}
	if !until.IsZero() && !until.After(time.Now()) {
		return past, nil, func() {}
	}
	s := &subscriber{ch: make(chan events.Message, subscriberBuffer), filter: ef}
	b.subs[s] = struct{}{}
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
		})
	}
	return past, s.ch, cancel
}

// Match reports whether m passes the event filters Docker defines: type,
// event (action), container, image, label, volume, network, scope.
func Match(m events.Message, ef filters.Args) bool {
	if !ef.ExactMatch("type", string(m.Type)) {
		return false
	}
	if ef.Has("event") && !ef.ExactMatch("event", string(m.Action)) {
		// "health_status: healthy" matches the filter "health_status".
		base := string(m.Action)
		for i, r := range base {
			if r == ':' {
				base = base[:i]
				break
			}
		}
		if !ef.ExactMatch("event", base) {
			return false
		}
	}
	if ef.Has("scope") && !ef.ExactMatch("scope", m.Scope) {
		return false
	}
	if !ef.MatchLabels("label", m.Actor.Attributes) {
		return false
	}
	name := m.Actor.Attributes["name"]
	matchObj := func(key string, t events.Type) bool {
		if !ef.Has(key) {
			return true
		}
		if m.Type != t {
			return false
		}
		for _, v := range ef.Get(key) {
			if v == m.Actor.ID || v == name || (len(v) >= 12 && len(m.Actor.ID) >= len(v) && m.Actor.ID[:len(v)] == v) {
				return true
			}
		}
		return false
	}
	if !matchObj("container", events.ContainerEventType) ||
		!matchObj("volume", events.VolumeEventType) ||
		!matchObj("network", events.NetworkEventType) {
		return false
	}
	if ef.Has("image") {
		img := m.Actor.Attributes["image"]
		if m.Type == events.ImageEventType {
			img = m.Actor.ID
		}
		ok := false
		for _, v := range ef.Get("image") {
			if v == img || v == name || v == m.Actor.ID {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
