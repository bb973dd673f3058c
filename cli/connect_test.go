package cli

import (
	"testing"
)

func TestResolveHost(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		env   map[string]string
		want  string
	}{
		{"default", nil, nil, "unix:///run/berth/berth.sock"},
		{"DOCKER_HOST", nil, map[string]string{"DOCKER_HOST": "unix:///d.sock"}, "unix:///d.sock"},
		{"BERTH_HOST beats DOCKER_HOST", nil, map[string]string{"DOCKER_HOST": "unix:///d.sock", "BERTH_HOST": "unix:///b.sock"}, "unix:///b.sock"},
		{"flag beats env", []string{"unix:///f.sock"}, map[string]string{"DOCKER_HOST": "unix:///d.sock", "BERTH_HOST": "unix:///b.sock"}, "unix:///f.sock"},
		{"bare path is a socket", []string{"/tmp/x.sock"}, nil, "unix:///tmp/x.sock"},
		{"host:port is tcp", nil, map[string]string{"BERTH_HOST": "127.0.0.1:2375"}, "tcp://127.0.0.1:2375"},
		{"empty env ignored", nil, map[string]string{"BERTH_HOST": "", "DOCKER_HOST": "tcp://h:1"}, "tcp://h:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveHost(tc.flags, func(k string) string { return tc.env[k] })
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := ResolveHost([]string{"unix:///a", "unix:///b"}, func(string) string { return "" }); err == nil {
		t.Error("two -H accepted")
	}
	if _, err := ResolveHost([]string{"ftp://x"}, func(string) string { return "" }); err == nil {
		t.Error("ftp:// accepted")
	}
}

func TestTLSOptions(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"DOCKER_CERT_PATH": dir}
	get := func(k string) string { return env[k] }
	if o := (ConnOptions{}).tlsOptions(get); o != nil {
		t.Errorf("TLS on without flags: %+v", o)
	}
	o := (ConnOptions{TLS: true}).tlsOptions(get)
	if o == nil || !o.InsecureSkipVerify {
		t.Errorf("--tls should skip verification: %+v", o)
	}
	env["DOCKER_TLS_VERIFY"] = "1"
	o = (ConnOptions{CACert: "/x/ca.pem"}).tlsOptions(get)
	if o == nil || o.InsecureSkipVerify || o.CAFile != "/x/ca.pem" {
		t.Errorf("DOCKER_TLS_VERIFY should verify with the given CA: %+v", o)
	}
}
