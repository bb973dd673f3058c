package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// fakeHost is a hybrid-cgroup host whose bounding set lacks
// CAP_SYS_RESOURCE and whose NOFILE hard limit is 20000, like the VM the
// reference was captured on.
func fakeHost() host {
	all := []string{}
	for _, c := range hostBoundingCapsAll() {
		if c != "CAP_SYS_RESOURCE" {
			all = append(all, c)
		}
	}
	return host{
		boundingCaps:  func() []string { return all },
		cgroupUnified: func() bool { return false },
		hardLimit: func(res int) (uint64, bool) {
			if res == unix.RLIMIT_NOFILE {
				return 20000, true
			}
			return 0, false
		},
		devices: func() []specs.LinuxDevice {
			return []specs.LinuxDevice{{Path: "/dev/kvm", Type: "c", Major: 10, Minor: 232}}
		},
	}
}

func hostBoundingCapsAll() []string {
	var out []string
	for _, c := range defaultCaps {
		out = append(out, c)
	}
	return append(out, "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_RESOURCE", "CAP_SYS_PTRACE")
}

// testRootfs makes a rootfs with passwd and group files.
func testRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nwww:x:33:33:www:/var/www:/bin/false\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n")
	write(t, filepath.Join(root, "etc/group"), "root:x:0:\ndaemon:x:1:\nwww:x:33:\nwheel:x:10:root,alice\naudio:x:29:alice\nalice:x:1000:\n")
	return root
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func baseOpts(root string) Options {
	return Options{ID: "8b6c6416f418b83fbb2d3e03d082a6b193843f2bdb52cda367c4d6f35c9dd88e", Rootfs: root, Args: []string{"sleep", "120"}, NetworkMode: "none"}
}

func TestUser(t *testing.T) {
	root := testRootfs(t)
	tests := []struct {
		user    string
		want    specs.User
		home    string
		wantErr string
	}{
		{"", specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0, 10}}, "/root", ""},
		{"root", specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0, 10}}, "/root", ""},
		{"alice", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 10, 29}}, "/home/alice", ""},
		{"alice:www", specs.User{UID: 1000, GID: 33, AdditionalGids: []uint32{33}}, "/home/alice", ""},
		{"33", specs.User{UID: 33, GID: 33, AdditionalGids: []uint32{33}}, "/var/www", ""},
		{"4242", specs.User{UID: 4242, GID: 0, AdditionalGids: []uint32{0}}, "/", ""},
		{"4242:4343", specs.User{UID: 4242, GID: 4343, AdditionalGids: []uint32{4343}}, "/", ""},
		{"foo", specs.User{}, "", "unable to find user foo: no matching entries in passwd file"},
		{"alice:nogroup", specs.User{}, "", "unable to find group nogroup: no matching entries in group file"},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			o := baseOpts(root)
			o.User = tc.user
			s, err := generate(o, fakeHost())
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errdefs.IsInvalidParameter(err) {
					t.Fatalf("err = %v, want InvalidParameter %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Process.User; got.UID != tc.want.UID || got.GID != tc.want.GID || !slices.Equal(got.AdditionalGids, tc.want.AdditionalGids) {
				t.Errorf("user = %+v, want %+v", got, tc.want)
			}
			if !slices.Contains(s.Process.Env, "HOME="+tc.home) {
				t.Errorf("env %v lacks HOME=%s", s.Process.Env, tc.home)
			}
		})
	}
}

// A symlinked /etc/passwd must resolve inside the rootfs, never on the host.
func TestUserSymlinkStaysInRoot(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	root := filepath.Join(dir, "root")
	for _, d := range []string{secret, filepath.Join(root, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(secret, "passwd"), "evil:x:1234:1234::/:/bin/sh\n")
	for _, target := range []string{"../../secret/passwd", filepath.Join(secret, "passwd")} {
		os.Remove(filepath.Join(root, "etc/passwd"))
		if err := os.Symlink(target, filepath.Join(root, "etc/passwd")); err != nil {
			t.Fatal(err)
		}
		o := baseOpts(root)
		o.User = "evil"
		if _, err := generate(o, fakeHost()); err == nil || !strings.Contains(err.Error(), "unable to find user evil") {
			t.Errorf("symlink %s: err = %v, want user not found", target, err)
		}
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		tty  bool
		want []string
	}{
		{"defaults", nil, false, []string{"PATH=" + defaultPath, "HOSTNAME=h", "HOME=/root"}},
		{"image PATH replaces in place", []string{"FOO=1", "PATH=/bin"}, false, []string{"PATH=/bin", "HOSTNAME=h", "FOO=1", "HOME=/root"}},
		{"tty", nil, true, []string{"PATH=" + defaultPath, "HOSTNAME=h", "TERM=xterm", "HOME=/root"}},
		{"later wins", []string{"A=1", "A=2", "HOME=/x"}, false, []string{"PATH=" + defaultPath, "HOSTNAME=h", "A=2", "HOME=/x"}},
		{"bare key removes", []string{"A=1", "A", "HOSTNAME"}, false, []string{"PATH=" + defaultPath, "HOME=/root"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := containerEnv(tc.env, "h", "/root", tc.tty)
			if !slices.Equal(got, tc.want) {
				t.Errorf("env = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	root := testRootfs(t)
	tests := []struct {
		name       string
		add, drop  []string
		privileged bool
		want       []string
		wantErr    bool
	}{
		{name: "default", want: defaultCaps},
		{name: "add without prefix", add: []string{"net_admin"}, want: append(slices.Clone(defaultCaps), "CAP_NET_ADMIN")},
		{name: "add with prefix", add: []string{"CAP_SYS_PTRACE"}, want: append(slices.Clone(defaultCaps), "CAP_SYS_PTRACE")},
		{name: "drop", drop: []string{"chown", "CAP_KILL"}, want: without(without(slices.Clone(defaultCaps), "CAP_CHOWN"), "CAP_KILL")},
		{name: "drop all add one", drop: []string{"ALL"}, add: []string{"NET_BIND_SERVICE"}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "drop all", drop: []string{"all"}, want: []string{}},
		{name: "add all minus drop", add: []string{"ALL"}, drop: []string{"SYS_ADMIN"}, want: without(fakeHost().boundingCaps(), "CAP_SYS_ADMIN")},
		{name: "privileged is host bounding set", privileged: true, want: fakeHost().boundingCaps()},
		{name: "unknown", add: []string{"FLY"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts(root)
			o.CapAdd, o.CapDrop, o.Privileged = tc.add, tc.drop, tc.privileged
			s, err := generate(o, fakeHost())
			if tc.wantErr {
				if !errdefs.IsInvalidParameter(err) {
					t.Fatalf("err = %v, want InvalidParameter", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := s.Process.Capabilities
			if !slices.Equal(c.Bounding, tc.want) || !slices.Equal(c.Effective, tc.want) || !slices.Equal(c.Permitted, tc.want) {
				t.Errorf("caps = %v, want %v", c.Bounding, tc.want)
			}
			if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
				t.Errorf("inheritable/ambient not empty: %v %v", c.Inheritable, c.Ambient)
			}
			if slices.Contains(c.Bounding, "CAP_SYS_RESOURCE") {
				t.Errorf("CAP_SYS_RESOURCE granted although the host lacks it")
			}
		})
	}
}

func TestSecurity(t *testing.T) {
	root := testRootfs(t)
	custom := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}`
	tests := []struct {
		name        string
		secopt      []string
		privileged  bool
		wantSeccomp string // "default", "none", "custom"
		wantNNP     bool
		wantErr     bool
	}{
		{name: "default", wantSeccomp: "default"},
		{name: "unconfined", secopt: []string{"seccomp=unconfined"}, wantSeccomp: "none"},
		{name: "legacy colon", secopt: []string{"seccomp:unconfined"}, wantSeccomp: "none"},
		{name: "custom", secopt: []string{"seccomp=" + custom}, wantSeccomp: "custom"},
		{name: "nnp", secopt: []string{"no-new-privileges"}, wantSeccomp: "default", wantNNP: true},
		{name: "nnp true", secopt: []string{"no-new-privileges=true"}, wantSeccomp: "default", wantNNP: true},
		{name: "nnp false", secopt: []string{"no-new-privileges:false"}, wantSeccomp: "default"},
		{name: "privileged", privileged: true, wantSeccomp: "none"},
		{name: "systempaths unconfined", secopt: []string{"systempaths=unconfined"}, wantSeccomp: "default"},
		{name: "bad systempaths", secopt: []string{"systempaths=open"}, wantErr: true},
		{name: "writable cgroups", secopt: []string{"writable-cgroups=true"}, wantSeccomp: "default"},
		{name: "bad json", secopt: []string{"seccomp={"}, wantErr: true},
		{name: "unknown opt", secopt: []string{"frobnicate=1"}, wantErr: true},
		{name: "no value", secopt: []string{"seccomp"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts(root)
			o.SecurityOpt, o.Privileged = tc.secopt, tc.privileged
			s, err := generate(o, fakeHost())
			if tc.wantErr {
				if !errdefs.IsInvalidParameter(err) {
					t.Fatalf("err = %v, want InvalidParameter", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sc := s.Linux.Seccomp
			switch tc.wantSeccomp {
			case "none":
				if sc != nil {
					t.Errorf("seccomp = %+v, want none", sc.DefaultAction)
				}
			case "default":
				if sc == nil || sc.DefaultAction != specs.ActErrno || len(sc.Syscalls) < 5 {
					t.Fatalf("seccomp = %+v, want Docker's default", sc)
				}
			case "custom":
				if sc == nil || sc.DefaultAction != specs.ActAllow || len(sc.Syscalls) != 1 || sc.Syscalls[0].Names[0] != "mkdir" {
					t.Errorf("seccomp = %+v, want the custom profile", sc)
				}
			}
			if s.Process.NoNewPrivileges != tc.wantNNP {
				t.Errorf("noNewPrivileges = %v", s.Process.NoNewPrivileges)
			}
			if tc.privileged {
				if len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
					t.Errorf("privileged has masked/readonly paths")
				}
				if len(s.Linux.Devices) != 1 || len(s.Linux.Resources.Devices) != 1 || !s.Linux.Resources.Devices[0].Allow {
					t.Errorf("privileged devices = %+v / %+v", s.Linux.Devices, s.Linux.Resources.Devices)
				}
				for _, m := range s.Mounts {
					if (m.Type == "sysfs" || m.Type == "cgroup") && slices.Contains(m.Options, "ro") {
						t.Errorf("privileged mount %s is ro", m.Destination)
					}
				}
			} else if tc.name == "systempaths unconfined" {
				if len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
					t.Errorf("systempaths=unconfined kept masked/readonly paths")
				}
			} else if !slices.Equal(s.Linux.MaskedPaths, maskedPaths) || !slices.Equal(s.Linux.ReadonlyPaths, readonlyPaths) {
				t.Errorf("masked paths = %v, readonly = %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
			}
			for _, m := range s.Mounts {
				if m.Type == "cgroup" && slices.Contains(m.Options, "ro") == (tc.privileged || tc.name == "writable cgroups") {
					t.Errorf("cgroup mount options %v", m.Options)
				}
			}
		})
	}
}

// The default profile drops syscalls that need capabilities the
// container lacks, and adds them back with --cap-add.
func TestSeccompFollowsCaps(t *testing.T) {
	root := testRootfs(t)
	allowed := func(s *specs.Spec, name string) bool {
		for _, sc := range s.Linux.Seccomp.Syscalls {
			if sc.Action == specs.ActAllow && slices.Contains(sc.Names, name) {
				return true
			}
		}
		return false
	}
	o := baseOpts(root)
	s, err := generate(o, fakeHost())
	if err != nil {
		t.Fatal(err)
	}
	if allowed(s, "mount") || allowed(s, "unshare") || !allowed(s, "chroot") {
		t.Errorf("default: mount/unshare allowed or chroot denied")
	}
	o.CapAdd = []string{"SYS_ADMIN"}
	if s, err = generate(o, fakeHost()); err != nil {
		t.Fatal(err)
	}
	if !allowed(s, "mount") || !allowed(s, "unshare") {
		t.Errorf("SYS_ADMIN: mount/unshare not allowed")
	}
}

func TestResources(t *testing.T) {
	root := testRootfs(t)
	i64 := func(p *int64) int64 {
		if p == nil {
			return -999
		}
		return *p
	}
	tests := []struct {
		name                     string
		opts                     func(*Options)
		limit, swap, quota, pids int64
		period                   uint64
		shares                   uint64
	}{
		{"none", func(*Options) {}, -999, -999, -999, -999, 0, 0},
		{"memory default swap", func(o *Options) { o.Memory = 64 << 20 }, 64 << 20, 128 << 20, -999, -999, 0, 0},
		{"memory no swap limit", func(o *Options) { o.Memory = 64 << 20; o.MemorySwap = -1 }, 64 << 20, -1, -999, -999, 0, 0},
		{"memory swap", func(o *Options) { o.Memory = 64 << 20; o.MemorySwap = 100 << 20 }, 64 << 20, 100 << 20, -999, -999, 0, 0},
		{"cpus 1.5", func(o *Options) { o.NanoCPUs = 1.5e9 }, -999, -999, 150000, -999, 100000, 0},
		{"cpus 0.01", func(o *Options) { o.NanoCPUs = 1e7 }, -999, -999, 1000, -999, 100000, 0},
		{"shares", func(o *Options) { o.CPUShares = 512 }, -999, -999, -999, -999, 0, 512},
		{"pids", func(o *Options) { o.PidsLimit = 10 }, -999, -999, -999, 10, 0, 0},
		{"pids unlimited", func(o *Options) { o.PidsLimit = -5 }, -999, -999, -999, -1, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts(root)
			tc.opts(&o)
			s, err := generate(o, fakeHost())
			if err != nil {
				t.Fatal(err)
			}
			r := s.Linux.Resources
			var pids int64 = -999
			if r.Pids != nil {
				pids = i64(r.Pids.Limit)
			}
			var period uint64
			if r.CPU.Period != nil {
				period = *r.CPU.Period
			}
			if i64(r.Memory.Limit) != tc.limit || i64(r.Memory.Swap) != tc.swap || i64(r.CPU.Quota) != tc.quota ||
				pids != tc.pids || period != tc.period || *r.CPU.Shares != tc.shares {
				t.Errorf("got limit %d swap %d quota %d period %d pids %d shares %d", i64(r.Memory.Limit), i64(r.Memory.Swap),
					i64(r.CPU.Quota), period, pids, *r.CPU.Shares)
			}
		})
	}
}

func TestRlimits(t *testing.T) {
	tests := []struct {
		name    string
		in      []specs.POSIXRlimit
		want    []specs.POSIXRlimit
		wantErr bool
	}{
		{"none", nil, nil, false},
		{"clamped to host hard", []specs.POSIXRlimit{{Type: "nofile", Soft: 1048576, Hard: 1048576}},
			[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 20000, Hard: 20000}}, false},
		{"below host kept", []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}},
			[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}, false},
		{"soft kept under clamp", []specs.POSIXRlimit{{Type: "nofile", Soft: 1024, Hard: 1 << 30}},
			[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 20000}}, false},
		{"other resource untouched", []specs.POSIXRlimit{{Type: "nproc", Soft: 5, Hard: 1 << 40}},
			[]specs.POSIXRlimit{{Type: "RLIMIT_NPROC", Soft: 5, Hard: 1 << 40}}, false},
		{"duplicate: last wins", []specs.POSIXRlimit{{Type: "core", Soft: 1, Hard: 1}, {Type: "RLIMIT_CORE", Soft: 2, Hard: 2}},
			[]specs.POSIXRlimit{{Type: "RLIMIT_CORE", Soft: 2, Hard: 2}}, false},
		{"unknown", []specs.POSIXRlimit{{Type: "bogus", Soft: 1, Hard: 1}}, nil, true},
		{"soft above hard", []specs.POSIXRlimit{{Type: "nofile", Soft: 2, Hard: 1}}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := clampRlimits(tc.in, fakeHost().hardLimit)
			if tc.wantErr {
				if !errdefs.IsInvalidParameter(err) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// The real host's hard limit is respected too.
func TestRlimitsRealHost(t *testing.T) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	got, err := clampRlimits([]specs.POSIXRlimit{{Type: "nofile", Soft: rl.Max + 1, Hard: rl.Max + 1}}, hostFacts().hardLimit)
	if err != nil || got[0].Hard != rl.Max || got[0].Soft != rl.Max {
		t.Errorf("got %v, %v; host hard %d", got, err, rl.Max)
	}
}

func TestNamespaces(t *testing.T) {
	root := testRootfs(t)
	types := func(ns []specs.LinuxNamespace) string {
		var s []string
		for _, n := range ns {
			s = append(s, string(n.Type)+n.Path)
		}
		return strings.Join(s, ",")
	}
	tests := []struct {
		name    string
		opts    func(*Options)
		unified bool
		want    string
		wantErr bool
	}{
		{"none", func(*Options) {}, false, "mount,network,uts,pid,ipc", false},
		{"unified adds cgroup", func(*Options) {}, true, "mount,network,uts,pid,ipc,cgroup", false},
		{"host net", func(o *Options) { o.NetworkMode = "host" }, false, "mount,uts,pid,ipc", false},
		{"join netns", func(o *Options) { o.NetworkMode = "/run/netns/x" }, false, "mount,network/run/netns/x,uts,pid,ipc", false},
		{"host pid ipc", func(o *Options) { o.PidMode, o.IpcMode = "host", "host" }, false, "mount,network,uts", false},
		{"bad net", func(o *Options) { o.NetworkMode = "weird" }, false, "", true},
		{"bad pid", func(o *Options) { o.PidMode = "container:x" }, false, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts(root)
			tc.opts(&o)
			h := fakeHost()
			h.cgroupUnified = func() bool { return tc.unified }
			s, err := generate(o, h)
			if tc.wantErr {
				if !errdefs.IsInvalidParameter(err) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := types(s.Linux.Namespaces); got != tc.want {
				t.Errorf("namespaces = %s, want %s", got, tc.want)
			}
			_, hasSysctl := s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"]
			if hasSysctl == (o.NetworkMode == "host") {
				t.Errorf("unprivileged port sysctl present=%v with network %q", hasSysctl, o.NetworkMode)
			}
		})
	}
}

func TestMounts(t *testing.T) {
	root := testRootfs(t)
	find := func(ms []specs.Mount, dest string) *specs.Mount {
		for i := range ms {
			if ms[i].Destination == dest {
				return &ms[i]
			}
		}
		return nil
	}
	netFiles := []specs.Mount{
		{Destination: "/etc/resolv.conf", Type: "bind", Source: "/c/resolv.conf", Options: []string{"rbind", "rprivate"}},
		{Destination: "/etc/hostname", Type: "bind", Source: "/c/hostname", Options: []string{"rbind", "rprivate"}},
	}
	t.Run("shm size", func(t *testing.T) {
		o := baseOpts(root)
		o.ShmSize = 1 << 30
		s, err := generate(o, fakeHost())
		if err != nil {
			t.Fatal(err)
		}
		if m := find(s.Mounts, "/dev/shm"); m == nil || !slices.Contains(m.Options, "size=1073741824") {
			t.Errorf("/dev/shm = %+v", m)
		}
	})
	t.Run("readonly rootfs", func(t *testing.T) {
		o := baseOpts(root)
		o.ReadonlyRootfs = true
		o.Mounts = netFiles
		s, err := generate(o, fakeHost())
		if err != nil {
			t.Fatal(err)
		}
		if !s.Root.Readonly {
			t.Error("root not readonly")
		}
		for dest, ro := range map[string]bool{"/proc": false, "/dev": false, "/dev/shm": false, "/dev/mqueue": false, "/sys": true, "/sys/fs/cgroup": true, "/etc/resolv.conf": true, "/etc/hostname": true} {
			m := find(s.Mounts, dest)
			if m == nil || slices.Contains(m.Options, "ro") != ro {
				t.Errorf("%s: %+v, want ro=%v", dest, m, ro)
			}
		}
		if netFiles[0].Options[len(netFiles[0].Options)-1] == "ro" {
			t.Error("caller's mount options were modified")
		}
	})
	t.Run("user mount overrides default and sorts by depth", func(t *testing.T) {
		o := baseOpts(root)
		o.Mounts = []specs.Mount{
			{Destination: "/data/sub", Type: "bind", Source: "/b"},
			{Destination: "/dev/shm", Type: "bind", Source: "/hostshm"},
			{Destination: "/data", Type: "bind", Source: "/a"},
		}
		s, err := generate(o, fakeHost())
		if err != nil {
			t.Fatal(err)
		}
		var dests []string
		for _, m := range s.Mounts {
			dests = append(dests, m.Destination)
		}
		want := "/proc /dev /dev/pts /sys /sys/fs/cgroup /dev/mqueue /data /data/sub /dev/shm"
		if got := strings.Join(dests, " "); got != want {
			t.Errorf("mounts = %s\nwant     %s", got, want)
		}
	})
	t.Run("user /dev drops /dev submounts", func(t *testing.T) {
		o := baseOpts(root)
		o.Mounts = []specs.Mount{{Destination: "/dev", Type: "bind", Source: "/dev"}}
		s, err := generate(o, fakeHost())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range s.Mounts {
			if strings.HasPrefix(m.Destination, "/dev/") {
				t.Errorf("unexpected %s", m.Destination)
			}
		}
	})
	t.Run("relative destination", func(t *testing.T) {
		o := baseOpts(root)
		o.Mounts = []specs.Mount{{Destination: "data", Type: "bind", Source: "/a"}}
		if _, err := generate(o, fakeHost()); !errdefs.IsInvalidParameter(err) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("ipc host", func(t *testing.T) {
		o := baseOpts(root)
		o.IpcMode = "host"
		s, err := generate(o, fakeHost())
		if err != nil {
			t.Fatal(err)
		}
		if m := find(s.Mounts, "/dev/shm"); m == nil || m.Type != "bind" || m.Source != "/dev/shm" {
			t.Errorf("/dev/shm = %+v", m)
		}
	})
}

func TestInvalidOptions(t *testing.T) {
	root := testRootfs(t)
	for name, mut := range map[string]func(*Options){
		"no args":      func(o *Options) { o.Args = nil },
		"relative cwd": func(o *Options) { o.Cwd = "tmp" },
		"negative shm": func(o *Options) { o.ShmSize = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			o := baseOpts(root)
			mut(&o)
			if _, err := generate(o, fakeHost()); !errdefs.IsInvalidParameter(err) {
				t.Errorf("err = %v, want InvalidParameter", err)
			}
		})
	}
}

// TestMatchesDocker20 compares a default busybox container's config with the
// one Docker 20.10 produced on this machine, field by field.
func TestMatchesDocker20(t *testing.T) {
	data, err := os.ReadFile("/work/shared/reference/runtime/docker20-config.json")
	if err != nil {
		t.Skipf("reference config not available (/work/shared absent): %v", err)
	}
	var ref specs.Spec
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	// busybox image's files
	write(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n")
	write(t, filepath.Join(root, "etc/group"), "root:x:0:\ndaemon:x:1:\n")

	var netMounts []specs.Mount
	for _, m := range ref.Mounts {
		if m.Type == "bind" {
			netMounts = append(netMounts, m)
		}
	}
	id := strings.TrimPrefix(ref.Linux.CgroupsPath, "/docker/")
	got, err := Generate(Options{
		ID: id, Rootfs: root, Args: ref.Process.Args, Hostname: ref.Hostname,
		NetworkMode: "none", CgroupsPath: ref.Linux.CgroupsPath, Mounts: netMounts,
	})
	if err != nil {
		t.Fatal(err)
	}
	eq := func(field string, a, b any) {
		t.Helper()
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Errorf("%s:\n got  %s\n want %s", field, ja, jb)
		}
	}
	eq("ociVersion", got.Version, ref.Version)
	eq("process.args", got.Process.Args, ref.Process.Args)
	// HOME is added (runc's init would add the same value).
	eq("process.env", got.Process.Env, append(slices.Clone(ref.Process.Env), "HOME=/root"))
	eq("process.cwd", got.Process.Cwd, ref.Process.Cwd)
	eq("process.user", got.Process.User, ref.Process.User)
	eq("process.capabilities", got.Process.Capabilities, ref.Process.Capabilities)
	eq("process.rlimits", got.Process.Rlimits, ref.Process.Rlimits)
	eq("process.noNewPrivileges", got.Process.NoNewPrivileges, ref.Process.NoNewPrivileges)
	eq("process.oomScoreAdj", got.Process.OOMScoreAdj, ref.Process.OOMScoreAdj)
	eq("process.apparmorProfile", got.Process.ApparmorProfile, ref.Process.ApparmorProfile)
	eq("hostname", got.Hostname, ref.Hostname)
	eq("mounts", got.Mounts, ref.Mounts)
	eq("linux.resources", got.Linux.Resources, ref.Linux.Resources)
	eq("linux.cgroupsPath", got.Linux.CgroupsPath, ref.Linux.CgroupsPath)
	eq("linux.maskedPaths", got.Linux.MaskedPaths, ref.Linux.MaskedPaths)
	eq("linux.readonlyPaths", got.Linux.ReadonlyPaths, ref.Linux.ReadonlyPaths)
	eq("linux.sysctl", got.Linux.Sysctl, ref.Linux.Sysctl)
	eq("linux.devices", got.Linux.Devices, ref.Linux.Devices)
	if hostCgroupUnified() {
		eq("linux.namespaces", got.Linux.Namespaces, append(slices.Clone(ref.Linux.Namespaces), specs.LinuxNamespace{Type: specs.CgroupNamespace}))
	} else {
		eq("linux.namespaces", got.Linux.Namespaces, ref.Linux.Namespaces)
	}
	// The seccomp profile comes from a newer moby/profiles than Docker
	// 20.10's: same shape, more syscalls allowed, except io_uring (now
	// denied) and socket (now allowed per address family, AF_ALG denied).
	newerDenies := map[string]bool{"io_uring_enter": true, "io_uring_register": true, "io_uring_setup": true, "socket": true}
	if got.Linux.Seccomp == nil {
		t.Fatal("no seccomp profile")
	}
	eq("seccomp.defaultAction", got.Linux.Seccomp.DefaultAction, ref.Linux.Seccomp.DefaultAction)
	eq("seccomp.architectures", got.Linux.Seccomp.Architectures, ref.Linux.Seccomp.Architectures)
	allowed := map[string]bool{}
	for _, sc := range got.Linux.Seccomp.Syscalls {
		if sc.Action == specs.ActAllow && len(sc.Args) == 0 {
			for _, n := range sc.Names {
				allowed[n] = true
			}
		}
	}
	for _, sc := range ref.Linux.Seccomp.Syscalls {
		if sc.Action == specs.ActAllow && len(sc.Args) == 0 {
			for _, n := range sc.Names {
				if !allowed[n] && !newerDenies[n] {
					t.Errorf("seccomp: Docker 20.10 allows %s, we do not", n)
				}
			}
		}
	}
}

// For a default container the seccomp section equals Docker's default
// profile as recorded in OCI form.
func TestSeccompMatchesReference(t *testing.T) {
	data, err := os.ReadFile("/work/shared/reference/runtime/docker-default-seccomp-oci.json")
	if err != nil {
		t.Skipf("reference not available (/work/shared absent): %v", err)
	}
	var ref specs.LinuxSeccomp
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	s, err := generate(baseOpts(testRootfs(t)), fakeHost())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(s.Linux.Seccomp)
	want, _ := json.Marshal(&ref)
	if string(got) != string(want) {
		t.Errorf("seccomp differs from the reference:\n got  %.300s...\n want %.300s...", got, want)
	}
}
