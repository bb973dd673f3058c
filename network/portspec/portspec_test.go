package portspec

import (
	"testing"

	"github.com/berth-dev/berth/errdefs"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want []string // "port hostip hostport"
		err  bool
	}{
		{in: "80", want: []string{"80/tcp  "}},
		{in: "8080:80", want: []string{"80/tcp  8080"}},
		{in: "8080:80/udp", want: []string{"80/udp  8080"}},
		{in: "127.0.0.1:8080:80", want: []string{"80/tcp 127.0.0.1 8080"}},
		{in: "127.0.0.1::80", want: []string{"80/tcp 127.0.0.1 "}},
		{in: "[::1]:8080:80", want: []string{"80/tcp ::1 8080"}},
		{in: "8000-8001:80-81", want: []string{"80/tcp  8000", "81/tcp  8001"}},
		{in: "8000-8010:80", want: []string{"80/tcp  8000-8010"}},
		{in: "80-81", want: []string{"80/tcp  ", "81/tcp  "}},
		{in: "8000-8002:80-81", err: true},
		{in: "0:80", want: []string{"80/tcp  "}},
		{in: "0-5:80", err: true},
		{in: "70000:80", err: true},
		{in: "80/icmp", err: true},
		{in: "a:b:c:d", err: true},
		{in: "nothost:80:80", err: true},
		{in: "", err: true},
		{in: "8080:", err: true},
		{in: "90-80", err: true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.err {
			if err == nil || !errdefs.IsInvalidParameter(err) {
				t.Errorf("%q: want an invalid-parameter error, got %v %v", tt.in, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("%q: got %d specs, want %d", tt.in, len(got), len(tt.want))
			continue
		}
		for i, s := range got {
			ip := ""
			if s.Binding.HostIP.IsValid() {
				ip = s.Binding.HostIP.String()
			}
			if g := s.Port.String() + " " + ip + " " + s.Binding.HostPort; g != tt.want[i] {
				t.Errorf("%q[%d] = %q, want %q", tt.in, i, g, tt.want[i])
			}
		}
	}
}

func FuzzParsePortSpec(f *testing.F) {
	for _, s := range []string{"80", "8080:80/udp", "127.0.0.1:8000-8001:80-81", "[::1]::80", "1-65535", "0.0.0.0:1:1/sctp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		specs, err := Parse(s)
		if err != nil {
			return
		}
		if len(specs) == 0 || len(specs) > 65535 {
			t.Fatalf("%q: %d specs", s, len(specs))
		}
		for _, sp := range specs {
			if !sp.Port.IsValid() || sp.Port.Num() == 0 {
				t.Fatalf("%q: invalid port %v", s, sp.Port)
			}
			if _, _, err := HostPorts(sp.Binding.HostPort); err != nil {
				t.Fatalf("%q: unparsable host port %q", s, sp.Binding.HostPort)
			}
		}
	})
}
