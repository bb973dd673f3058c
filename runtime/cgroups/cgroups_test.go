package cgroups

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const helperEnv = "BERTH_CGROUPS_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "alloc" {
		// Wait until the parent has put us in the cgroup, then touch far
		// more memory than the limit allows.
		var b [1]byte
		os.Stdin.Read(b[:])
		var keep [][]byte
		for i := 0; i < 64; i++ {
			chunk := make([]byte, 8<<20)
			for j := 0; j < len(chunk); j += 4096 {
				chunk[j] = 1
			}
			keep = append(keep, chunk)
		}
		fmt.Println("survived", len(keep))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"/berth/abc", "berth/abc", false},
		{"berth/abc", "berth/abc", false},
		{"/../../etc/x", "etc/x", false},
		{"/a/../..", "", true},
		{"", "", true},
		{"system.slice:berth:abc", "", true},
	}
	for _, tc := range tests {
		got, err := cleanPath(tc.in)
		if tc.err {
			if !errdefs.IsInvalidParameter(err) {
				t.Errorf("%q: err = %v", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestConversions(t *testing.T) {
	for shares, want := range map[uint64]uint64{2: 1, 1024: 39, 262144: 10000, 1: 1, 1 << 30: 10000} {
		if got := sharesToWeight(shares); got != want {
			t.Errorf("sharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
	for _, tc := range []struct {
		q    *int64
		p    *uint64
		want string
	}{
		{i64(50000), u64(100000), "50000 100000"},
		{nil, u64(20000), "max 20000"},
		{i64(-1), nil, "max 100000"},
		{i64(150000), nil, "150000 100000"},
	} {
		if got := cpuMax(tc.q, tc.p); got != tc.want {
			t.Errorf("cpuMax = %q, want %q", got, tc.want)
		}
	}
	for _, tc := range []struct {
		r    specs.LinuxDeviceCgroup
		want string
	}{
		{specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}, "a *:* rwm"},
		{specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"}, "c 1:5 rwm"},
		{specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(136), Access: "rw"}, "c 136:* rw"},
		{specs.LinuxDeviceCgroup{Allow: true, Type: "b", Major: i64(-1), Minor: i64(-1), Access: "m"}, "b *:* m"},
	} {
		if got := deviceRule(tc.r); got != tc.want {
			t.Errorf("deviceRule(%+v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

// The v2 writer, run against plain files: what lands in each file.
func TestV2SetFormats(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "c")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := []string{"memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max", "pids.max", "io.weight"}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := &v2{dir: dir, root: root}
	err := m.Set(&specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(96 << 20), Reservation: i64(32 << 20)},
		CPU:     &specs.LinuxCPU{Shares: u64(512), Quota: i64(150000), Period: u64(100000)},
		Pids:    &specs.LinuxPids{Limit: i64(10)},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(500)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory.max": "67108864", "memory.swap.max": "33554432", "memory.low": "33554432",
		"cpu.weight": "20", "cpu.max": "150000 100000", "pids.max": "10", "io.weight": "default 4950",
	}
	for f, w := range want {
		if got, _ := readFile(dir, f); got != w {
			t.Errorf("%s = %q, want %q", f, got, w)
		}
	}
	// Unlimited swap and pids.
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 30), Swap: i64(-1)}, Pids: &specs.LinuxPids{Limit: i64(-1)}}); err != nil {
		t.Fatal(err)
	}
	for f, w := range map[string]string{"memory.swap.max": "max", "pids.max": "max", "memory.max": "1073741824"} {
		if got, _ := readFile(dir, f); got != w {
			t.Errorf("%s = %q, want %q", f, got, w)
		}
	}
}

// --- root tests on the real hierarchies ---

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
}

// testPath returns a unique two-level cgroup path and removes its top
// level from every hierarchy when the test ends.
func testPath(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	top := "berth-cgtest-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		l, err := detectLayout()
		if err != nil {
			return
		}
		dirs := []string{}
		for _, mnt := range l.v1 {
			dirs = append(dirs, filepath.Join(mnt, top))
		}
		if l.unified != "" {
			dirs = append(dirs, filepath.Join(l.unified, top))
		}
		for _, d := range dirs {
			if err := killAndRemove(d, true); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return "/" + top + "/" + name
}

func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func procCgroups(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// allDirs lists every directory a manager owns.
func allDirs(m Manager) []string {
	switch m := m.(type) {
	case *v1:
		var d []string
		for _, dir := range m.dirs {
			d = append(d, dir)
		}
		if m.track != nil {
			d = append(d, m.track.dir)
		}
		return d
	case *v2:
		return []string{m.dir}
	}
	return nil
}

func TestLimitsAndDestroy(t *testing.T) {
	requireRoot(t)
	path := testPath(t)
	m, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := startSleeper(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(64 << 20)},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000)},
		Pids:   &specs.LinuxPids{Limit: i64(10)},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},
		},
	}
	if err := m.Set(res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(procCgroups(t, cmd.Process.Pid), path) {
		t.Errorf("process not in %s:\n%s", path, procCgroups(t, cmd.Process.Pid))
	}

	switch mm := m.(type) {
	case *v1:
		want := map[string]map[string]string{
			"memory":  {"memory.limit_in_bytes": "67108864", "memory.memsw.limit_in_bytes": "67108864"},
			"pids":    {"pids.max": "10"},
			"cpu":     {"cpu.shares": "512", "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"},
			"devices": {"devices.list": "c 1:3 rwm\nc 1:5 rwm\nc *:* m\nb *:* m\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:1 rwm\nc 5:2 rwm\nc 136:* rwm\nc 10:200 rwm"},
		}
		for ctrl, files := range want {
			for f, w := range files {
				if got, err := readFile(mm.dirs[ctrl], f); err != nil || got != w {
					t.Errorf("%s/%s = %q (%v), want %q", ctrl, f, got, err, w)
				}
			}
		}
		if mm.track != nil {
			if pids, _ := readPids(mm.track.dir); len(pids) != 1 || pids[0] != cmd.Process.Pid {
				t.Errorf("unified tracking cgroup has %v", pids)
			}
		}
	case *v2:
		for f, w := range map[string]string{"memory.max": "67108864", "memory.swap.max": "0", "pids.max": "10", "cpu.max": "50000 100000", "cpu.weight": "20"} {
			if got, err := readFile(mm.dir, f); err != nil || got != w {
				t.Errorf("%s = %q (%v), want %q", f, got, err, w)
			}
		}
	}

	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pids != 1 || st.MemoryLimit != 64<<20 {
		t.Errorf("stats = %+v", st)
	}
	if oom, err := m.OOMKilled(); err != nil || oom {
		t.Errorf("OOMKilled = %v, %v", oom, err)
	}

	dirs := allDirs(m)
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("sleeper ended with %v, want SIGKILL", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sleeper still alive after Destroy")
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists", d)
		}
	}
	// Destroying twice is fine.
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestOOMKilled(t *testing.T) {
	requireRoot(t)
	m, err := New(testPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destroy()
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)}}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=alloc")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &strings.Builder{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	stdin.Write([]byte{1})
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("allocator ended with %v (%s), want SIGKILL by the OOM killer", err, out)
	}
	oom, err := m.OOMKilled()
	if err != nil || !oom {
		t.Errorf("OOMKilled = %v, %v; want true", oom, err)
	}
}

func TestPidsLimitEnforced(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox not installed")
	}
	m, err := New(testPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destroy()
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(4)}}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/busybox", "sh", "-c", "read x; for i in 1 2 3 4 5 6; do /bin/busybox sleep 2 & done; echo all-started")
	stdin, _ := cmd.StdinPipe()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	stdin.Write([]byte("go\n"))
	st, _ := m.Stats()
	_ = cmd.Wait()
	if st.Pids > 4 {
		t.Errorf("pids.current = %d above the limit", st.Pids)
	}
	if strings.Contains(out.String(), "all-started") || !strings.Contains(out.String(), "can't fork") {
		t.Errorf("no fork failure with pids.max=4: %q", out.String())
	}
}

// The v2 manager against the real unified hierarchy (on this hybrid host
// it holds no controllers, so only placement, stats and kill are tested).
func TestV2Unified(t *testing.T) {
	requireRoot(t)
	l, err := detectLayout()
	if err != nil || l.unified == "" {
		t.Skip("no cgroup2 mounted")
	}
	rel, _ := cleanPath(testPath(t))
	m := &v2{dir: filepath.Join(l.unified, rel), root: l.unified}
	cmd := startSleeper(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(procCgroups(t, cmd.Process.Pid), "0::/"+rel) {
		t.Errorf("not placed: %s", procCgroups(t, cmd.Process.Pid))
	}
	if st, err := m.Stats(); err != nil || st.Pids != 1 {
		t.Errorf("stats = %+v, %v", st, err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("sleeper ended with %v, want SIGKILL", err)
	}
	if _, err := os.Stat(m.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists", m.dir)
	}
}

// Device rules on cgroup v2 are an eBPF program; the kernel enforces it.
func TestV2Devices(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox not installed")
	}
	l, err := detectLayout()
	if err != nil || l.unified == "" {
		t.Skip("no cgroup2 mounted")
	}
	rel, _ := cleanPath(testPath(t))
	m := &v2{dir: filepath.Join(l.unified, rel), root: l.unified}
	defer m.Destroy()
	err = m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}, // null
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"}, // zero
		{Allow: false, Type: "c", Major: i64(1), Minor: i64(5), Access: "w"},  // ... but not for writing
		{Allow: true, Type: "c", Major: i64(1), Access: "r"},                  // any mem device, read only
	}})
	if err != nil {
		t.Fatal(err)
	}
	script := `read x
/bin/busybox cat /dev/null && echo null-rw-ok
/bin/busybox head -c1 /dev/zero >/dev/null && echo zero-r-ok
echo x 2>/dev/null >/dev/zero && echo zero-w-ok || echo zero-w-denied
/bin/busybox head -c1 /dev/urandom >/dev/null && echo urandom-r-ok
echo x 2>/dev/null >/dev/urandom && echo urandom-w-ok || echo urandom-w-denied
/bin/busybox head -c1 /dev/tty >/dev/null 2>&1 && echo tty-ok || echo tty-denied`
	cmd := exec.Command("/bin/busybox", "sh", "-c", script)
	stdin, _ := cmd.StdinPipe()
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	stdin.Write([]byte("go\n"))
	cmd.Wait()
	want := "null-rw-ok\nzero-r-ok\nzero-w-denied\nurandom-r-ok\nurandom-w-denied\ntty-denied"
	if got := strings.TrimSpace(out.String()); got != want {
		t.Errorf("device access:\n%s\nwant\n%s", got, want)
	}
}

func TestDeviceProgramRejectsBadRules(t *testing.T) {
	for _, r := range []specs.LinuxDeviceCgroup{
		{Allow: true, Type: "x", Access: "rwm"},
		{Allow: true, Type: "c", Access: "rwz"},
	} {
		if _, err := deviceProgram([]specs.LinuxDeviceCgroup{r}); err == nil {
			t.Errorf("%+v: no error", r)
		}
	}
	// A deny-all rule first ends the program there (last rule tried first).
	p, err := deviceProgram([]specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}})
	if err != nil || len(p) != 8 || p[len(p)-1].op != ebpfExit {
		t.Errorf("deny all: %d insns, %v", len(p), err)
	}
}

func TestFavorDynMods(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to remount the cgroup hierarchy")
	}
	if _, err := FavorDynMods(); err != nil {
		t.Skipf("favordynmods unavailable here (Linux 6.0+ only): %v", err)
	}
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup2"))
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) > 0 && !strings.Contains(mounts[0].VFSOptions, "favordynmods") {
		t.Errorf("cgroup2 at %s lacks favordynmods after FavorDynMods: %q", mounts[0].Mountpoint, mounts[0].VFSOptions)
	}
	if changed, err := FavorDynMods(); err != nil || changed {
		t.Errorf("second call: changed %v, err %v; want no change", changed, err)
	}
}
