package shim

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// maxShimRSS is the resident size a shim with a running container must
// stay under: one shim runs per container.
const maxShimRSS = 16 << 20

// TestShimRSS measures the shim's resident memory with a container
// running. With BERTH_BINARY set (a built berth binary, as root with
// busybox) it measures that binary's shim mode with the real runtime;
// otherwise the test binary's, with a host process.
func TestShimRSS(t *testing.T) {
	ctx := testCtx(t)
	cfg := newConfig(t, "sleep", "30")
	exe := os.Args[0]
	if bin := os.Getenv("BERTH_BINARY"); bin != "" {
		exe = bin
		cfg.BundleDir = busyboxBundle(t, cfg.ID, false, "sleep", "30")
		cfg.Runtime, cfg.RuntimeStateDir = "", t.TempDir()
	}
	cl, err := launchExe(ctx, cfg, exe)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killLeftovers(cfg.StateDir, cl) })
	shimPid := readPid(t, cfg.StateDir)
	idle := rssOf(t, shimPid)
	if _, err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	running := rssOf(t, shimPid)
	t.Logf("shim RSS (%s): %d KiB before start, %d KiB with the container running; %s", exe, idle>>10, running>>10, rollup(shimPid))
	if running > maxShimRSS {
		t.Errorf("shim RSS %d KiB is over %d KiB", running>>10, maxShimRSS>>10)
	}
	cl.Signal(ctx, syscall.SIGKILL)
	if _, err := cl.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// rssOf reads a process's VmRSS in bytes.
func rssOf(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// rollup summarises /proc/pid/smaps_rollup: the memory that is the
// shim's own (private) and its proportional share of what shims share.
func rollup(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, line := range strings.Split(string(data), "\n") {
		for _, k := range []string{"Pss:", "Private_Clean:", "Private_Dirty:", "Shared_Clean:"} {
			if strings.HasPrefix(line, k) {
				parts = append(parts, strings.Join(strings.Fields(line), " "))
			}
		}
	}
	return strings.Join(parts, ", ")
}
