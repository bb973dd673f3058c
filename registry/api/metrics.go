package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/registry/storage"
)

// Metrics holds the counters /metrics exposes in the Prometheus text
// format. Hand-written to keep the binary free of client_golang.
type Metrics struct {
	store *storage.Store

	mu       sync.Mutex
	requests map[reqKey]uint64
	latency  map[string]*histogram // by route

	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64

	usageMu   sync.Mutex
	usage     storage.Usage
	usageTime time.Time
}

type reqKey struct {
	method, route string
	code          int
}

var latencyBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30}

type histogram struct {
	counts []uint64 // per bucket, cumulative when written out
	sum    float64
	n      uint64
}

func newMetrics(store *storage.Store) *Metrics {
	return &Metrics{store: store, requests: map[reqKey]uint64{}, latency: map[string]*histogram{}}
}

func (m *Metrics) observe(method, route string, code int, d time.Duration, in, out int64) {
	m.bytesIn.Add(uint64(max(in, 0)))
	m.bytesOut.Add(uint64(max(out, 0)))
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[reqKey{method, route, code}]++
	h := m.latency[route]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(latencyBuckets))}
		m.latency[route] = h
	}
	sec := d.Seconds()
	for i, b := range latencyBuckets {
		if sec <= b {
			h.counts[i]++
			break
		}
	}
	h.sum += sec
	h.n++
}

// storageUsage walks the store at most every 30 seconds.
func (m *Metrics) storageUsage(ctx context.Context) storage.Usage {
	m.usageMu.Lock()
	defer m.usageMu.Unlock()
	if time.Since(m.usageTime) > 30*time.Second {
		if u, err := m.store.Usage(ctx); err == nil {
			m.usage, m.usageTime = u, time.Now()
		}
	}
	return m.usage
}

func (m *Metrics) serve(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	m.write(r.Context(), &b)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, b.String())
}

func (m *Metrics) write(ctx context.Context, w io.Writer) {
	m.mu.Lock()
	keys := make([]reqKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.route != b.route {
			return a.route < b.route
		}
		if a.method != b.method {
			return a.method < b.method
		}
		return a.code < b.code
	})
	fmt.Fprintln(w, "# HELP berth_registry_requests_total HTTP requests served, by method, route and status code.")
	fmt.Fprintln(w, "# TYPE berth_registry_requests_total counter")
	for _, k := range keys {
		fmt.Fprintf(w, "berth_registry_requests_total{method=%q,route=%q,code=\"%d\"} %d\n", k.method, k.route, k.code, m.requests[k])
	}
	routes := make([]string, 0, len(m.latency))
	for r := range m.latency {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	fmt.Fprintln(w, "# HELP berth_registry_request_duration_seconds Time to serve a request, by route.")
	fmt.Fprintln(w, "# TYPE berth_registry_request_duration_seconds histogram")
	for _, r := range routes {
		h := m.latency[r]
		var cum uint64
		for i, b := range latencyBuckets {
			cum += h.counts[i]
			fmt.Fprintf(w, "berth_registry_request_duration_seconds_bucket{route=%q,le=\"%g\"} %d\n", r, b, cum)
		}
		fmt.Fprintf(w, "berth_registry_request_duration_seconds_bucket{route=%q,le=\"+Inf\"} %d\n", r, h.n)
		fmt.Fprintf(w, "berth_registry_request_duration_seconds_sum{route=%q} %g\n", r, h.sum)
		fmt.Fprintf(w, "berth_registry_request_duration_seconds_count{route=%q} %d\n", r, h.n)
	}
	m.mu.Unlock()
	fmt.Fprintln(w, "# HELP berth_registry_received_bytes_total Request body bytes received.")
	fmt.Fprintln(w, "# TYPE berth_registry_received_bytes_total counter")
	fmt.Fprintf(w, "berth_registry_received_bytes_total %d\n", m.bytesIn.Load())
	fmt.Fprintln(w, "# HELP berth_registry_sent_bytes_total Response body bytes sent.")
	fmt.Fprintln(w, "# TYPE berth_registry_sent_bytes_total counter")
	fmt.Fprintf(w, "berth_registry_sent_bytes_total %d\n", m.bytesOut.Load())
	u := m.storageUsage(ctx)
	fmt.Fprintln(w, "# HELP berth_registry_storage_bytes Bytes of blob content stored.")
	fmt.Fprintln(w, "# TYPE berth_registry_storage_bytes gauge")
	fmt.Fprintf(w, "berth_registry_storage_bytes %d\n", u.Bytes)
	fmt.Fprintln(w, "# HELP berth_registry_storage_blobs Blobs stored.")
	fmt.Fprintln(w, "# TYPE berth_registry_storage_blobs gauge")
	fmt.Fprintf(w, "berth_registry_storage_blobs %d\n", u.Blobs)
	fmt.Fprintln(w, "# HELP berth_registry_upload_sessions Open upload sessions.")
	fmt.Fprintln(w, "# TYPE berth_registry_upload_sessions gauge")
	fmt.Fprintf(w, "berth_registry_upload_sessions %d\n", u.Uploads)
}
