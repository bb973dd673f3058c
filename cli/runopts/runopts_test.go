package runopts

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"
)

func parse(t *testing.T, args []string, env map[string]string) (*Request, error) {
	t.Helper()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	o := AddFlags(fs, true)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return o.Parse(fs.Args(), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte("# comment\n\nA=1\n  B=two words\nFROMHOST\nUNSET\nEMPTY=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host := map[string]string{"FROMHOST": "h", "PASS": "p"}
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, r *Request)
	}{
		{"memory units", []string{"-m", "64m", "img"}, func(t *testing.T, r *Request) {
			if r.HostConfig.Memory != 64<<20 {
				t.Errorf("Memory %d", r.HostConfig.Memory)
			}
		}},
		{"memory gigabytes", []string{"--memory=1g", "img"}, func(t *testing.T, r *Request) {
			if r.HostConfig.Memory != 1<<30 {
				t.Errorf("Memory %d", r.HostConfig.Memory)
			}
		}},
		{"cpus to nano", []string{"--cpus", "1.5", "img"}, func(t *testing.T, r *Request) {
			if r.HostConfig.NanoCPUs != 1_500_000_000 {
				t.Errorf("NanoCPUs %d", r.HostConfig.NanoCPUs)
			}
		}},
		{"pids limit", []string{"--pids-limit", "20", "img"}, func(t *testing.T, r *Request) {
			if r.HostConfig.PidsLimit == nil || *r.HostConfig.PidsLimit != 20 {
				t.Errorf("PidsLimit %v", r.HostConfig.PidsLimit)
			}
		}},
		{"ulimits", []string{"--ulimit", "nofile=1024:2048", "--ulimit", "nproc=64", "img"}, func(t *testing.T, r *Request) {
			got := r.HostConfig.Ulimits
			if len(got) != 2 || got[0].Name != "nofile" || got[0].Soft != 1024 || got[0].Hard != 2048 ||
				got[1].Name != "nproc" || got[1].Soft != 64 || got[1].Hard != 64 {
				t.Errorf("Ulimits %+v %+v", got[0], got[1])
			}
		}},
		{"user and workdir", []string{"-u", "1000:1000", "-w", "/tmp", "img"}, func(t *testing.T, r *Request) {
			if r.Config.User != "1000:1000" || r.Config.WorkingDir != "/tmp" {
				t.Errorf("User %q WorkingDir %q", r.Config.User, r.Config.WorkingDir)
			}
		}},
		{"env file then -e", []string{"--env-file", envFile, "-e", "X=y", "-e", "PASS", "-e", "NOPE", "img"}, func(t *testing.T, r *Request) {
			want := []string{"A=1", "B=two words", "FROMHOST=h", "EMPTY=", "X=y", "PASS=p", "NOPE"}
			if !reflect.DeepEqual(r.Config.Env, want) {
				t.Errorf("Env %q, want %q", r.Config.Env, want)
			}
		}},
		{"command after image keeps its flags", []string{"--rm", "img", "sh", "-c", "echo -n hi", "--name", "x"}, func(t *testing.T, r *Request) {
			if r.Config.Image != "img" || !reflect.DeepEqual(r.Config.Cmd, []string{"sh", "-c", "echo -n hi", "--name", "x"}) {
				t.Errorf("Image %q Cmd %q", r.Config.Image, r.Config.Cmd)
			}
			if !r.HostConfig.AutoRemove || r.Name != "" {
				t.Errorf("AutoRemove %v Name %q", r.HostConfig.AutoRemove, r.Name)
			}
		}},
		{"no command leaves image default", []string{"img"}, func(t *testing.T, r *Request) {
			if r.Config.Cmd != nil || r.Config.Entrypoint != nil || r.Config.Env != nil {
				t.Errorf("Cmd %q Entrypoint %q Env %q", r.Config.Cmd, r.Config.Entrypoint, r.Config.Env)
			}
		}},
		{"entrypoint", []string{"--entrypoint", "/bin/sh", "img", "-c", "x"}, func(t *testing.T, r *Request) {
			if !reflect.DeepEqual(r.Config.Entrypoint, []string{"/bin/sh"}) {
				t.Errorf("Entrypoint %q", r.Config.Entrypoint)
			}
		}},
		{"empty entrypoint resets", []string{"--entrypoint", "", "img"}, func(t *testing.T, r *Request) {
			if !reflect.DeepEqual(r.Config.Entrypoint, []string{""}) {
				t.Errorf("Entrypoint %q", r.Config.Entrypoint)
			}
		}},
		{"labels hostname name", []string{"-l", "a=b", "--label", "c", "-h", "box", "--name", "web", "img"}, func(t *testing.T, r *Request) {
			if !reflect.DeepEqual(r.Config.Labels, map[string]string{"a": "b", "c": ""}) || r.Config.Hostname != "box" || r.Name != "web" {
				t.Errorf("Labels %v Hostname %q Name %q", r.Config.Labels, r.Config.Hostname, r.Name)
			}
		}},
		{"attach defaults", []string{"img"}, func(t *testing.T, r *Request) {
			c := r.Config
			if c.AttachStdin || !c.AttachStdout || !c.AttachStderr || c.OpenStdin || c.StdinOnce {
				t.Errorf("attach %v %v %v open %v once %v", c.AttachStdin, c.AttachStdout, c.AttachStderr, c.OpenStdin, c.StdinOnce)
			}
		}},
		{"interactive", []string{"-it", "img"}, func(t *testing.T, r *Request) {
			c := r.Config
			if !c.AttachStdin || !c.OpenStdin || !c.StdinOnce || !c.Tty {
				t.Errorf("attach stdin %v open %v once %v tty %v", c.AttachStdin, c.OpenStdin, c.StdinOnce, c.Tty)
			}
		}},
		{"detached attaches nothing", []string{"-d", "img"}, func(t *testing.T, r *Request) {
			c := r.Config
			if c.AttachStdin || c.AttachStdout || c.AttachStderr {
				t.Errorf("attach %v %v %v", c.AttachStdin, c.AttachStdout, c.AttachStderr)
			}
		}},
		{"-a stderr only", []string{"-a", "stderr", "img"}, func(t *testing.T, r *Request) {
			c := r.Config
			if c.AttachStdin || c.AttachStdout || !c.AttachStderr {
				t.Errorf("attach %v %v %v", c.AttachStdin, c.AttachStdout, c.AttachStderr)
			}
		}},
		{"network and security", []string{"--network", "none", "--read-only", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--privileged", "img"}, func(t *testing.T, r *Request) {
			h := r.HostConfig
			if h.NetworkMode != "none" || !h.ReadonlyRootfs || !h.Privileged ||
				!reflect.DeepEqual(h.CapAdd, []string{"NET_ADMIN"}) || !reflect.DeepEqual(h.CapDrop, []string{"ALL"}) ||
				!reflect.DeepEqual(h.SecurityOpt, []string{"no-new-privileges"}) {
				t.Errorf("HostConfig %+v", h)
			}
			if _, ok := r.NetworkingConfig.EndpointsConfig["none"]; !ok {
				t.Errorf("EndpointsConfig %v", r.NetworkingConfig.EndpointsConfig)
			}
		}},
		{"default network", []string{"img"}, func(t *testing.T, r *Request) {
			if r.HostConfig.NetworkMode != "default" {
				t.Errorf("NetworkMode %q", r.HostConfig.NetworkMode)
			}
		}},
		{"restart and stop", []string{"--restart", "on-failure:3", "--stop-signal", "SIGINT", "--stop-timeout", "7", "--log-driver", "none", "img"}, func(t *testing.T, r *Request) {
			if r.HostConfig.RestartPolicy != (container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}) {
				t.Errorf("RestartPolicy %+v", r.HostConfig.RestartPolicy)
			}
			if r.Config.StopSignal != "SIGINT" || r.Config.StopTimeout == nil || *r.Config.StopTimeout != 7 || r.HostConfig.LogConfig.Type != "none" {
				t.Errorf("StopSignal %q StopTimeout %v Log %q", r.Config.StopSignal, r.Config.StopTimeout, r.HostConfig.LogConfig.Type)
			}
		}},
		{"stop timeout unset stays nil", []string{"img"}, func(t *testing.T, r *Request) {
			if r.Config.StopTimeout != nil {
				t.Errorf("StopTimeout %v", *r.Config.StopTimeout)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parse(t, tc.args, host)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-m", "lots", "img"}, "--memory"},
		{[]string{"--cpus", "0.0000000001", "img"}, "too precise"},
		{[]string{"--cpus", "x", "img"}, "--cpus"},
		{[]string{"--ulimit", "nofile", "img"}, "--ulimit"},
		{[]string{"--rm", "--restart", "always", "img"}, "--restart and --rm"},
		{[]string{"--restart", "sometimes", "img"}, "restart policy"},
		{[]string{"--restart", "always:3", "img"}, "on-failure"},
		{[]string{"-d", "-a", "stdout", "img"}, "--attach and --detach"},
		{[]string{"-a", "stdfoo", "img"}, "STDIN, STDOUT"},
		{[]string{"--env-file", "/nonexistent/env", "img"}, "env file"},
		{[]string{"-p", "1.2.3:80:80", "img"}, "published port"},
		{[]string{}, "at least 1 argument"},
	} {
		_, err := parse(t, tc.args, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "\xEF\xBB\xBFA=1\r\n", want: []string{"A=1"}},
		{in: "A B=1\n", wantErr: "whitespaces"},
		{in: "=x\n", wantErr: "no variable name"},
		{in: "A=\xff\n", wantErr: "invalid utf8"},
		{in: "  # indented comment\nK=v=w\n", want: []string{"K=v=w"}},
	} {
		got, err := ParseEnvFile([]byte(tc.in), func(string) (string, bool) { return "", false })
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	for in, want := range map[string]int64{"1": 1e9, "0.5": 5e8, "2.25": 2_250_000_000, "0": 0, "0.000000001": 1} {
		got, err := ParseCPUs(in)
		if err != nil || got != want {
			t.Errorf("ParseCPUs(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseCPUs("-1"); err == nil {
		t.Error("negative cpus accepted")
	}
}

func FuzzParseEnvFile(f *testing.F) {
	f.Add([]byte("A=1\n#c\nB\n"))
	f.Add([]byte("\xEF\xBB\xBF X = y"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := ParseEnvFile(data, func(string) (string, bool) { return "v", true })
		if err != nil {
			return
		}
		for _, l := range lines {
			k, _, ok := strings.Cut(l, "=")
			if !ok || k == "" || strings.ContainsAny(k, " \t\n") {
				t.Fatalf("bad env entry %q from %q", l, data)
			}
		}
	})
}
