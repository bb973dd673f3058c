package compose

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary Compose files to the loader: it must return a
// project or an error, never panic, and a project it accepts must convert
// to container create calls without panicking either.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		appYAML,
		"services: {web: {image: busybox}}",
		"services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n",
		"services: {w: {image: '${X:?unset}'}}",
		"services: {w: {image: x, ports: ['1-3:4-6/udp'], volumes: ['/a:/b:ro', 'v:/c'], tmpfs: [/t]}}\nvolumes: {v: {}}",
		"services: {w: {build: ., deploy: {resources: {limits: {memory: 1g, cpus: '2', pids: 5}}}}}",
		"x-a: &a {image: x}\nservices: {w: {<<: *a, healthcheck: {test: 'true', interval: 1s}}}",
		"{",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := Load(context.Background(), LoadOptions{WorkingDir: dir, Name: "fuzz", Environ: []string{"COMPOSE_DISABLE_ENV_FILE=1"}})
		if err != nil {
			return
		}
		c := &Service{}
		for _, name := range p.ServiceNames() {
			s := p.Services[name]
			if _, err := ConfigHash(s); err != nil {
				t.Fatalf("hash of accepted service %s: %v", name, err)
			}
			_, _ = c.createOptions(p, s, 1, "h", "", false)
		}
	})
}
