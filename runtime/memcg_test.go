package runtime

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime/cgroups"
)

// memoryCgroup is a test stand-in for runtime/cgroups (memory controller
// only, v1 or v2), to check what the built-in runtime does with a cgroup
// manager: placement before exec, limits, OOM reporting, removal.
type memoryCgroup struct{ dir string }

func newMemoryCgroup(path string) (cgroups.Manager, error) {
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err == nil {
		return &memoryCgroup{dir: filepath.Join("/sys/fs/cgroup/memory", path)}, nil
	}
	return &memoryCgroup{dir: filepath.Join("/sys/fs/cgroup", path)}, nil
}

func (m *memoryCgroup) v2() bool { return !strings.HasPrefix(m.dir, "/sys/fs/cgroup/memory/") }

func (m *memoryCgroup) Apply(pid int) error {
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(m.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}

func (m *memoryCgroup) Set(r *specs.LinuxResources) error {
	if r.Memory == nil || r.Memory.Limit == nil {
		return nil
	}
	// Set comes before Apply: it makes the cgroup, as the real one does.
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return err
	}
	file := "memory.limit_in_bytes"
	if m.v2() {
		file = "memory.max"
	}
	if !m.v2() {
		// No swap either, so that the limit ends in an OOM kill.
		_ = os.WriteFile(filepath.Join(m.dir, "memory.swappiness"), []byte("0"), 0)
	}
	return os.WriteFile(filepath.Join(m.dir, file), []byte(strconv.FormatInt(*r.Memory.Limit, 10)), 0)
}

func (m *memoryCgroup) OOMKilled() (bool, error) {
	file, key := "memory.oom_control", "oom_kill"
	if m.v2() {
		file = "memory.events"
	}
	f, err := os.Open(filepath.Join(m.dir, file))
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && fields[0] == key {
			n, _ := strconv.Atoi(fields[1])
			return n > 0, nil
		}
	}
	return false, sc.Err()
}

func (m *memoryCgroup) Stats() (cgroups.Stats, error) {
	return cgroups.Stats{}, errors.New("not in the stand-in")
}

func (m *memoryCgroup) Destroy() error {
	if err := os.Remove(m.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// TestCgroupPlacementAndOOM uses the stand-in manager: the user process
// must already be in its cgroup when it runs, with the limit applied; an
// OOM kill is reported; Delete removes the cgroup.
func TestCgroupPlacementAndOOM(t *testing.T) {
	busyboxRootfs(t)
	tests := []struct {
		name    string
		args    []string
		code    int
		oom     bool
		contain string
	}{
		{"placed before exec", []string{"cat", "/proc/self/cgroup"}, 0, false, ""},
		// tail keeps the current line in memory; /dev/zero has no newline.
		{"oom killed", []string{"tail", "/dev/zero"}, 137, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := newBuiltin(Options{StateDir: t.TempDir(), CgroupParent: "/berth"})
			rt.newCgroup = newMemoryCgroup
			bundle, s := newBundle(t, tc.args...)
			cgPath := "/berth-test/" + uniqueID(t)
			limit := int64(16 << 20)
			s.Linux.CgroupsPath = cgPath
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
			writeBundle(t, bundle, s)
			cg, _ := newMemoryCgroup(cgPath)
			dir := cg.(*memoryCgroup).dir
			res, err := runBundle(t, rt, uniqueID(t), bundle)
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			if res.status.Code != tc.code || res.status.OOMKilled != tc.oom {
				t.Errorf("status %+v, want code %d oom %v (stderr %q)", res.status, tc.code, tc.oom, res.stderr)
			}
			if tc.code == 0 {
				want := ":memory:" + cgPath + "\n"
				if cg.(*memoryCgroup).v2() {
					want = "0::" + cgPath + "\n"
				}
				if !strings.Contains(res.stdout, want) {
					t.Errorf("/proc/self/cgroup %q does not contain %q", res.stdout, want)
				}
			}
			// runBundle has called Delete.
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cgroup %s still there after Delete: %v", dir, err)
				os.Remove(dir)
			}
		})
	}
	removeTestCgroupParents()
}
