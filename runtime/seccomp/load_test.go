package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The kernel tests re-execute the test binary as a helper that installs a
// filter on its own thread and reports what the kernel then did.
const helperEnv = "BERTH_SECCOMP_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// helperMain runs in the child: profile JSON on stdin, then mode.
func helperMain(mode string) int {
	runtime.LockOSThread()
	var cfg specs.LinuxSeccomp
	if err := json.NewDecoder(os.Stdin).Decode(&cfg); err != nil {
		fmt.Println("decode:", err)
		return 2
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println("no_new_privs:", err)
		return 2
	}
	if err := Load(&cfg); err != nil {
		fmt.Println("load:", err)
		return 2
	}
	keySpecSession := uintptr(0xfffffffd) // KEY_SPEC_SESSION_KEYRING (-3) as passed to the kernel
	errnoOf := func(_, _ uintptr, e syscall.Errno) int { return int(e) }
	switch mode {
	case "getpid":
		fmt.Println(errnoOf(unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)))
	case "mkdir":
		err := os.Mkdir(os.Args[len(os.Args)-1], 0o755)
		var errno syscall.Errno
		errors.As(err, &errno)
		fmt.Println(int(errno))
	case "unshare-keyctl":
		// unshare(CLONE_NEWUSER) needs no capability, so only seccomp can
		// stop it; keyctl likewise.
		fmt.Println(errnoOf(unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0, 0)),
			errnoOf(unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, keySpecSession, 0)),
			errnoOf(unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)))
	case "exec":
		// argv: ... /bin/busybox -c SCRIPT, run as "sh -c SCRIPT".
		args := os.Args[len(os.Args)-3:]
		err := syscall.Exec(args[0], []string{"sh", args[1], args[2]}, os.Environ())
		fmt.Println("exec:", err)
		return 2
	}
	return 0
}

func runHelper(t *testing.T, mode string, cfg *specs.LinuxSeccomp, extra ...string) string {
	t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$"}, extra...)...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stdin = strings.NewReader(string(data))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper %s: %v\n%s", mode, err, out)
	}
	return strings.TrimSpace(string(out))
}

func requireSeccomp(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	b, _ := os.ReadFile("/proc/self/status")
	if !strings.Contains(string(b), "Seccomp:") {
		t.Skip("kernel without seccomp")
	}
}

// The filter really runs in the kernel: chosen errnos come back.
func TestLoadInKernel(t *testing.T) {
	requireSeccomp(t)
	t.Run("getpid errno 42", func(t *testing.T) {
		cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: uptr(42)}}}
		if got := runHelper(t, "getpid", cfg); got != "42" {
			t.Errorf("getpid errno = %q, want 42", got)
		}
	})
	t.Run("mkdir EPERM", func(t *testing.T) {
		cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}}}
		dir := filepath.Join(t.TempDir(), "d")
		if got := runHelper(t, "mkdir", cfg, dir); got != fmt.Sprint(int(unix.EPERM)) {
			t.Errorf("mkdir errno = %q, want EPERM", got)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Error("directory was created")
		}
	})
	t.Run("argument condition", func(t *testing.T) {
		// Deny unshare only for CLONE_NEWUSER via MASKED_EQ.
		cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"unshare"}, Action: specs.ActErrno, ErrnoRet: uptr(77),
				Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpMaskedEqual, Value: unix.CLONE_NEWUSER, ValueTwo: unix.CLONE_NEWUSER}}},
			{Names: []string{"keyctl"}, Action: specs.ActErrno, ErrnoRet: uptr(78)}}}
		if got := runHelper(t, "unshare-keyctl", cfg); got != "77 78 0" {
			t.Errorf("got %q, want \"77 78 0\"", got)
		}
	})
	t.Run("docker default denies unshare and keyctl", func(t *testing.T) {
		got := runHelper(t, "unshare-keyctl", defaultProfile(t, dockerCaps...))
		want := fmt.Sprintf("%d %d 0", int(unix.EPERM), int(unix.EPERM))
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// A program exec'd under Docker's default profile works normally, but
// cannot create a user namespace.
func TestDockerDefaultExec(t *testing.T) {
	requireSeccomp(t)
	const busybox = "/bin/busybox"
	if _, err := os.Stat(busybox); err != nil {
		t.Skip("busybox not installed (apt-get install busybox-static)")
	}
	prof := defaultProfile(t, dockerCaps...)
	if got := runHelper(t, "exec", prof, busybox, "-c", "echo ok; /bin/busybox ls / >/dev/null && echo ls-ok"); got != "ok\nls-ok" {
		t.Errorf("sh under the default profile: %q", got)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", busybox, "-c", "/bin/busybox unshare -U /bin/busybox true; echo rc=$?")
	data, _ := json.Marshal(prof)
	cmd.Env = append(os.Environ(), helperEnv+"=exec")
	cmd.Stdin = strings.NewReader(string(data))
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "rc=1") || !strings.Contains(string(out), "not permitted") {
		t.Errorf("unshare -U under the default profile: %q, want a refusal", out)
	}
}
