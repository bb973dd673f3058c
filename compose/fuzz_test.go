package compose

import (
	"context"
	"testing"
	"time"
)

// FuzzLoad feeds arbitrary files to the loader: it must answer with a
// project or an error, never panic or hang, and a loaded project must
// convert to create requests without panicking.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(appYAML))
	f.Add([]byte("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n"))
	f.Add([]byte("services:\n  web:\n    image: ${IMG:-busybox}\n    ports: ['127.0.0.1:80-81:80-81/udp']\n    volumes: ['/h:/c:ro,z', 'v:/d:nocopy']\n    tmpfs: [/t]\nvolumes: {v: {}}\n"))
	f.Add([]byte("services:\n  b:\n    build: {context: ., dockerfile_inline: 'FROM x'}\n    extends: {service: c}\n  c: {image: x, healthcheck: {test: 'true', retries: 2}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p, err := LoadBytes(ctx, "fuzz", t.TempDir(), data, map[string]string{"IMG": "busybox"})
		if err != nil {
			return
		}
		names := p.ServiceNames()
		if _, err := startOrder(p, names); err != nil {
			return
		}
		for _, n := range names {
			_, _ = buildContainer(p, p.Services[n], 1, "c", "", false)
			_, _ = ConfigHash(p.Services[n])
		}
	})
}
