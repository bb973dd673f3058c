package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestResolveHostOrder(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	if h := resolveHost("", get); h != DefaultHost {
		t.Fatalf("default: %s", h)
	}
	env["DOCKER_HOST"] = "unix:///docker.sock"
	if h := resolveHost("", get); h != "unix:///docker.sock" {
		t.Fatalf("DOCKER_HOST: %s", h)
	}
	env["BERTH_HOST"] = "unix:///berth.sock"
	if h := resolveHost("", get); h != "unix:///berth.sock" {
		t.Fatalf("BERTH_HOST over DOCKER_HOST: %s", h)
	}
	if h := resolveHost("tcp://1.2.3.4:2376", get); h != "tcp://1.2.3.4:2376" {
		t.Fatalf("-H over env: %s", h)
	}
}

func TestOptsRequest(t *testing.T) {
	args := []string{"-m", "64m", "--cpus", "1.5", "--pids-limit", "20", "-e", "A=1", "-u", "1000:1000",
		"--ulimit", "nofile=1024:2048", "-l", "k=v", "--rm", "--network", "none", "--entrypoint", "", "-t", "busybox", "echo", "x"}
	fresh := &containerOpts{}
	fset := newFlagSet(fresh)
	if err := fset.Parse(args); err != nil {
		t.Fatal(err)
	}
	rest := fset.Args()
	req, err := fresh.request(rest[0], rest[1:], func(n string) bool { return fset.Changed(n) })
	if err != nil {
		t.Fatal(err)
	}
	hc := req.HostConfig
	if hc.Memory != 64<<20 || hc.NanoCPUs != 1.5e9 || *hc.PidsLimit != 20 || !hc.AutoRemove || hc.NetworkMode != "none" {
		t.Fatalf("host config: %+v", hc)
	}
	if len(hc.Ulimits) != 1 || hc.Ulimits[0].Name != "nofile" || hc.Ulimits[0].Soft != 1024 || hc.Ulimits[0].Hard != 2048 {
		t.Fatalf("ulimits: %+v", hc.Ulimits)
	}
	cfg := req.Config
	if cfg.Image != "busybox" || strings.Join(cfg.Cmd, " ") != "echo x" || cfg.User != "1000:1000" || !cfg.Tty {
		t.Fatalf("config: %+v", cfg)
	}
	if len(cfg.Entrypoint) != 1 || cfg.Entrypoint[0] != "" || cfg.Labels["k"] != "v" || cfg.Env[0] != "A=1" {
		t.Fatalf("entrypoint/labels/env: %+v", cfg)
	}
	o2 := &containerOpts{memory: "lots"}
	if _, err := o2.request("img", nil, func(string) bool { return false }); err == nil {
		t.Fatal("bad memory accepted")
	}
}

func newFlagSet(o *containerOpts) *pflag.FlagSet {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	o.addFlags(fs)
	return fs
}

func TestDemux(t *testing.T) {
	var in bytes.Buffer
	in.Write([]byte{1, 0, 0, 0, 0, 0, 0, 3})
	in.WriteString("out")
	in.Write([]byte{2, 0, 0, 0, 0, 0, 0, 3})
	in.WriteString("err")
	var out, errb bytes.Buffer
	if err := demux(&in, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if out.String() != "out" || errb.String() != "err" {
		t.Fatalf("demux: %q %q", out.String(), errb.String())
	}
	sys := bytes.NewBuffer([]byte{3, 0, 0, 0, 0, 0, 0, 4})
	sys.WriteString("boom")
	if err := demux(sys, &out, &errb); err == nil || err.Error() != "boom" {
		t.Fatalf("system error frame: %v", err)
	}
}

func TestRenderTable(t *testing.T) {
	var b bytes.Buffer
	rows := []any{map[string]string{"A": "x", "B": "longer value"}}
	if err := render(&b, "table {{.A}}\t{{.B}}", map[string]string{"A": "COL A", "B": "COL B"}, rows); err != nil {
		t.Fatal(err)
	}
	want := "COL A     COL B\nx         longer value\n"
	if b.String() != want {
		t.Fatalf("table:\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	render(&b, "{{json .}}", nil, []any{map[string]int{"n": 1}})
	if b.String() != "{\"n\":1}\n" {
		t.Fatalf("json: %q", b.String())
	}
}
