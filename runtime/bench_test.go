package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// BenchmarkStartTrue measures Start to the exit of `true` in Docker's
// bundle for `docker run --network none busybox true` (no cgroup and no
// seccomp filter: those come from their own packages), for the built-in
// runtime and for runc on the same bundle.
func BenchmarkStartTrue(b *testing.B) {
	for _, rtName := range []string{"berth", "runc"} {
		b.Run(rtName, func(b *testing.B) {
			if _, err := exec.LookPath("runc"); err != nil && rtName == "runc" {
				b.Skip("runc not installed")
			}
			benchStart(b, rtName, func(*specs.Spec) {})
		})
	}
}

// BenchmarkStartTrueWithout shows what parts of the setup cost, by leaving
// them out of the bundle.
func BenchmarkStartTrueWithout(b *testing.B) {
	variants := []struct {
		name string
		edit func(s *specs.Spec)
	}{
		{"cgroup-mount", func(s *specs.Spec) { s.Mounts = append(s.Mounts[:4:4], s.Mounts[5:]...) }},
		{"netns", func(s *specs.Spec) {
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.UTSNamespace}, {Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}}
			s.Linux.Sysctl = nil
		}},
		{"mounts", func(s *specs.Spec) {
			s.Mounts, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, s.Linux.Sysctl = nil, nil, nil, nil
		}},
		{"namespaces-and-mounts", func(s *specs.Spec) {
			s.Linux.Namespaces, s.Mounts, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, s.Linux.Sysctl = nil, nil, nil, nil, nil
		}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) { benchStart(b, "berth", v.edit) })
	}
}

func benchStart(b *testing.B, rtName string, edit func(*specs.Spec)) {
	bundle, s := newBundle(b, "true")
	edit(s)
	writeBundle(b, bundle, s)
	rt := newTestRuntime(b, rtName)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("bench-%d-%d", os.Getpid(), i)
		p, err := rt.Start(context.Background(), id, bundle, IO{})
		if err != nil {
			b.Fatal(err)
		}
		if st, err := p.Wait(); err != nil || st.Code != 0 {
			b.Fatalf("status %+v, %v", st, err)
		}
		if err := rt.Delete(context.Background(), id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStartTrueDocker adds what Docker's bundle has on top of
// BenchmarkStartTrue: the default seccomp profile (compiled by
// runtime/seccomp in Start) and a cgroup with resources (runtime/cgroups).
// It needs both packages merged.
func BenchmarkStartTrueDocker(b *testing.B) {
	data, err := os.ReadFile("/work/shared/reference/runtime/docker-default-seccomp-oci.json")
	if err != nil {
		b.Skipf("reference profile not available: %v", err)
	}
	var sc specs.LinuxSeccomp
	if err := json.Unmarshal(data, &sc); err != nil {
		b.Fatal(err)
	}
	b.Run("seccomp", func(b *testing.B) {
		benchStart(b, "berth", func(s *specs.Spec) { s.Linux.Seccomp = &sc })
	})
	b.Run("seccomp+cgroup", func(b *testing.B) {
		b.Cleanup(removeTestCgroupParents)
		pids := int64(1000)
		benchStart(b, "berth", func(s *specs.Spec) {
			s.Linux.Seccomp = &sc
			s.Linux.CgroupsPath = fmt.Sprintf("/berth-test/bench-%d", os.Getpid())
			s.Linux.Resources = &specs.LinuxResources{
				Pids: &specs.LinuxPids{Limit: &pids},
				Devices: []specs.LinuxDeviceCgroup{
					{Allow: false, Access: "rwm"},
					{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},
				},
			}
		})
	})
}

func ptr[T any](v T) *T { return &v }
