package runopts

import (
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestSecFlags(t *testing.T) {
	req, err := parseArgs(t, "--device", "/dev/fuse", "--device", "/dev/null:/dev/n2:r",
		"--sysctl", "net.ipv4.ip_forward=1", "--pid", "host", "--ipc", "container:abc", "--uts", "host",
		"--oom-score-adj", "-500", "--cpuset-cpus", "0-1", "--runtime", "runc", "--memory-reservation", "10m",
		"--cpu-period", "50000", "--cpu-quota", "25000", "busybox")
	if err != nil {
		t.Fatal(err)
	}
	hc := req.HostConfig
	wantDev := []container.DeviceMapping{
		{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
		{PathOnHost: "/dev/null", PathInContainer: "/dev/n2", CgroupPermissions: "r"},
	}
	if !reflect.DeepEqual(hc.Devices, wantDev) {
		t.Errorf("devices %+v", hc.Devices)
	}
	if hc.Sysctls["net.ipv4.ip_forward"] != "1" || hc.PidMode != "host" || hc.IpcMode != "container:abc" || hc.UTSMode != "host" ||
		hc.OomScoreAdj != -500 || hc.CpusetCpus != "0-1" || hc.Runtime != "runc" || hc.MemoryReservation != 10<<20 ||
		hc.CPUPeriod != 50000 || hc.CPUQuota != 25000 {
		t.Errorf("host config %+v", hc)
	}
}

func TestSecFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		err  string
	}{
		{[]string{"--sysctl", "vm.swappiness=1"}, `invalid argument "vm.swappiness=1" for "--sysctl" flag: sysctl 'vm.swappiness=1' is not allowed`},
		{[]string{"--device", "/dev/a:/dev/b:xyz"}, `invalid argument "/dev/a:/dev/b:xyz" for "--device" flag: bad mode specified: xyz`},
		{[]string{"--device", "/dev/a:rel"}, `invalid argument "/dev/a:rel" for "--device" flag: rel is not an absolute path`},
		{[]string{"--pid", "bogus"}, "--pid: invalid pid mode"},
		{[]string{"--uts", "container:x"}, "--uts: invalid uts mode"},
	}
	for _, tc := range cases {
		_, err := parseArgs(t, append(tc.args, "busybox")...)
		if err == nil || err.Error() != tc.err {
			t.Errorf("%v: got %v, want %q", tc.args, err, tc.err)
		}
	}
}

func FuzzParseDevice(f *testing.F) {
	for _, s := range []string{"/dev/fuse", "/dev/a:/dev/b", "/dev/a:/dev/b:rw", "/dev/a:m", "::", "a:b:c:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dm, err := ParseDevice(s)
		if err != nil {
			return
		}
		if dm.PathInContainer == "" || !validPerms(dm.CgroupPermissions) {
			t.Fatalf("%q parsed to %+v", s, dm)
		}
	})
}

func parseArgs(t *testing.T, args ...string) (*Request, error) {
	t.Helper()
	return parse(t, args, nil)
}
