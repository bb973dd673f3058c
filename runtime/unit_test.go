package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/runtime/seccomp"
)

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		opts  []string
		flags uintptr
		prop  []uintptr
		data  string
	}{
		{[]string{"nosuid", "noexec", "nodev"}, unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV, nil, ""},
		{[]string{"nosuid", "strictatime", "mode=755", "size=65536k"}, unix.MS_NOSUID | unix.MS_STRICTATIME, nil, "mode=755,size=65536k"},
		{[]string{"rbind", "rprivate"}, unix.MS_BIND | unix.MS_REC, []uintptr{unix.MS_PRIVATE | unix.MS_REC}, ""},
		{[]string{"ro", "rw"}, 0, nil, ""},
		{[]string{"bind", "ro", "slave"}, unix.MS_BIND | unix.MS_RDONLY, []uintptr{unix.MS_SLAVE}, ""},
		{[]string{"newinstance", "ptmxmode=0666", "", "tmpcopyup"}, 0, nil, "newinstance,ptmxmode=0666"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.opts, ","), func(t *testing.T) {
			mo := parseMountOptions(tc.opts)
			if mo.flags != tc.flags || !reflect.DeepEqual(mo.propagation, tc.prop) || mo.data != tc.data {
				t.Errorf("got flags %#x prop %v data %q, want %#x %v %q", mo.flags, mo.propagation, mo.data, tc.flags, tc.prop, tc.data)
			}
		})
	}
}

func TestDockerCapsMask(t *testing.T) {
	c := newProcessCaps(&specs.LinuxCapabilities{Bounding: dockerCaps, Effective: dockerCaps})
	if c.bounding != 0xa80425fb || c.effective != 0xa80425fb {
		t.Errorf("bounding %#x effective %#x, want Docker's 0xa80425fb", c.bounding, c.effective)
	}
	if c.permitted != 0 || c.ambient != 0 {
		t.Errorf("unset sets not empty: %+v", c)
	}
	if got := parseCaps([]string{"CAP_NOT_A_CAP", "cap_chown"}, capByName(), lastCap()); got != 1 {
		t.Errorf("unknown names must be ignored and case folded: got %#x", got)
	}
}

func TestPlanRoundTrip(t *testing.T) {
	s := dockerSpec("rootfs", "/bundle", "sh", "-c", "echo hi")
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096}}
	s.Process.Terminal = true
	s.Process.ConsoleSize = &specs.Box{Height: 24, Width: 80}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	p, err := makePlan(s, "/bundle", seccomp.Compile)
	if err != nil {
		t.Fatal(err)
	}
	if p.Root != "/bundle/rootfs" || !p.DevTmpfs || !p.MountNS || !p.UTSNS || !p.NewCgroupNS || p.Caps[0] != 0xa80425fb {
		t.Errorf("plan not worked out as expected: %+v", p)
	}
	got, err := decodePlan(p.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", got, p)
	}
}

func TestMakePlanRejects(t *testing.T) {
	tests := map[string]func(s *specs.Spec){
		"relative cwd":        func(s *specs.Spec) { s.Process.Cwd = "tmp" },
		"unknown rlimit":      func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}} },
		"sysctl path":         func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"../../etc/x": "1"} },
		"relative mount dest": func(s *specs.Spec) { s.Mounts[0].Destination = "proc" },
		"device type":         func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "z"}} },
		"propagation":         func(s *specs.Spec) { s.Linux.RootfsPropagation = "sideways" },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			s := dockerSpec("/rootfs", "/bundle", "true")
			edit(s)
			if _, err := makePlan(s, "/bundle", seccomp.Compile); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func FuzzDecodePlan(f *testing.F) {
	p, err := makePlan(dockerSpec("/rootfs", "/bundle", "echo", "hi"), "/bundle", seccomp.Compile)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p.encode())
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodePlan(data)
		if err != nil {
			return
		}
		again, err := decodePlan(p.encode())
		if err != nil {
			t.Fatalf("re-decoding an encoded plan: %v", err)
		}
		if !reflect.DeepEqual(p, again) {
			t.Fatal("plan changed through encode/decode")
		}
	})
}

func FuzzParseMountOptions(f *testing.F) {
	f.Add("rbind,rprivate,ro")
	f.Add("nosuid,strictatime,mode=755,size=65536k")
	f.Fuzz(func(t *testing.T, s string) {
		mo := parseMountOptions(strings.Split(s, ","))
		for _, d := range strings.Split(mo.data, ",") {
			if _, ok := mountFlagOptions[d]; ok {
				t.Fatalf("flag option %q leaked into data %q", d, mo.data)
			}
		}
	})
}

func TestClampRlimit(t *testing.T) {
	tests := []struct{ soft, hard, max, wantSoft, wantHard uint64 }{
		{1024, 2048, 20000, 1024, 2048},
		{1 << 30, 1 << 30, 20000, 20000, 20000},
		{30000, 10000, 20000, 10000, 10000},
		{5, 1 << 40, ^uint64(0), 5, 1 << 40},
	}
	for _, tc := range tests {
		got := clampRlimit(tc.soft, tc.hard, tc.max)
		if got.Cur != tc.wantSoft || got.Max != tc.wantHard {
			t.Errorf("clamp(%d,%d,%d) = %d/%d, want %d/%d", tc.soft, tc.hard, tc.max, got.Cur, got.Max, tc.wantSoft, tc.wantHard)
		}
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tool"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	env := []string{"HOME=/", "PATH=/nonexistent:" + dir}
	tests := []struct {
		file, want, err string
	}{
		{"tool", filepath.Join(dir, "tool"), ""},
		{"data", "", `exec: "data": executable file not found in $PATH`},
		{"nosuch", "", `exec: "nosuch": executable file not found in $PATH`},
		{filepath.Join(dir, "tool"), filepath.Join(dir, "tool"), ""},
		{filepath.Join(dir, "nosuch"), "", "no such file or directory"},
		{filepath.Join(dir, "sub"), "", "is a directory"},
		// X_OK needs an execute bit even for root.
		{filepath.Join(dir, "data"), "", "permission denied"},
	}
	for _, tc := range tests {
		got, err := lookPath(tc.file, env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("lookPath(%q) error %v, want %q", tc.file, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("lookPath(%q) = %q, %v; want %q", tc.file, got, err, tc.want)
		}
	}
	if _, err := lookPath("tool", []string{"HOME=/"}); err == nil {
		t.Error("found a command without PATH")
	}
}

func TestExitStatus(t *testing.T) {
	if st := exitStatus(syscall.WaitStatus(3 << 8)); st.Code != 3 || st.Signal != 0 {
		t.Errorf("exit 3: %+v", st)
	}
	if st := exitStatus(syscall.WaitStatus(syscall.SIGKILL)); st.Code != 137 || st.Signal != syscall.SIGKILL {
		t.Errorf("SIGKILL: %+v", st)
	}
}

func TestCloneFlags(t *testing.T) {
	flags, pidPath, err := cloneFlags([]specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}, {Type: specs.CgroupNamespace},
	})
	if err != nil || flags != unix.CLONE_NEWPID || pidPath != "" {
		t.Errorf("flags %#x, %q, %v; want only CLONE_NEWPID (net is joined, cgroup unshared later)", flags, pidPath, err)
	}
	flags, pidPath, err = cloneFlags([]specs.LinuxNamespace{{Type: specs.PIDNamespace, Path: "/proc/1/ns/pid"}, {Type: specs.MountNamespace}})
	if err != nil || flags != unix.CLONE_NEWNS || pidPath != "/proc/1/ns/pid" {
		t.Errorf("joining a pid namespace: %#x, %q, %v", flags, pidPath, err)
	}
	if _, _, err := cloneFlags([]specs.LinuxNamespace{{Type: specs.MountNamespace, Path: "/proc/1/ns/mnt"}}); !errdefs.IsNotImplemented(err) {
		t.Errorf("joining a mount namespace: %v, want NotImplemented", err)
	}
	if flags, _, err := cloneFlags([]specs.LinuxNamespace{{Type: specs.UserNamespace}}); err != nil || flags != unix.CLONE_NEWUSER {
		t.Errorf("new user namespace: %#x, %v", flags, err)
	}
	if _, _, err := cloneFlags([]specs.LinuxNamespace{{Type: specs.UserNamespace, Path: "/proc/1/ns/user"}}); !errdefs.IsNotImplemented(err) {
		t.Errorf("joining a user namespace: %v, want NotImplemented", err)
	}
}

func TestInitError(t *testing.T) {
	for _, msg := range []string{`exec: "x": executable file not found in $PATH`, "exec: \"/x\": stat /x: no such file or directory", `exec: "/etc": permission denied`} {
		if err := initError(msg); !errdefs.IsInvalidParameter(err) || err.Error() != msg {
			t.Errorf("%q: got %v", msg, err)
		}
	}
	if err := initError("mount /proc: device busy"); errdefs.IsInvalidParameter(err) || errors.Unwrap(err) != nil {
		t.Errorf("setup failure classified as bad input: %v", err)
	}
}
