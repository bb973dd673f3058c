package runtime

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/berth-dev/berth/runtime/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// BenchmarkPlan measures what Start does while the init boots: decoding
// Docker's default config.json and working out the plan, seccomp included.
func BenchmarkPlan(b *testing.B) {
	data, err := os.ReadFile("/work/shared/reference/runtime/docker-default-seccomp-oci.json")
	if err != nil {
		b.Skipf("reference profile not available: %v", err)
	}
	var sc specs.LinuxSeccomp
	if err := json.Unmarshal(data, &sc); err != nil {
		b.Fatal(err)
	}
	s := dockerSpec(b.TempDir(), b.TempDir(), "true")
	s.Linux.Seccomp = &sc
	config, err := json.Marshal(s)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			if _, err := parseSpec(config); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("compile-seccomp", func(b *testing.B) {
		for b.Loop() {
			if _, err := seccomp.Compile(&sc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse+plan", func(b *testing.B) {
		for b.Loop() {
			ps, err := parseSpec(config)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := makePlan(ps, "/bundle", seccomp.Compile); err != nil {
				b.Fatal(err)
			}
		}
	})
}
