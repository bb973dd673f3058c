package compose

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/volume"
)

const appYAML = `
services:
  db:
    image: busybox
    environment:
      ROLE: db
    volumes: ["data:/data"]
    networks: [back]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
    deploy:
      resources:
        limits: {memory: 64M, cpus: "0.5", pids: 100}
  web:
    image: busybox
    ports: ["8080:80"]
    restart: unless-stopped
    environment:
      GREETING: ${GREETING:-hello}
    networks: [back, front]
    depends_on:
      db: {condition: service_healthy}
volumes:
  data: {}
networks:
  back: {}
  front: {}
`

// loadYAML writes content as compose.yaml in a temp dir and loads it.
func loadYAML(t *testing.T, content string, env ...string) *types.Project {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(context.Background(), LoadOptions{Files: []string{f}, ProjectName: "proj", Env: env})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

func TestUpCreatesLabelledObjectsInOrder(t *testing.T) {
	p := loadYAML(t, appYAML)
	f := newFake("busybox")
	var progress bytes.Buffer
	c := New(f, &bytes.Buffer{}, &progress, false, nil)
	if err := c.Up(context.Background(), p, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := f.callsWith("create"), []string{"create proj-db-1", "create proj-web-1"}; !slices.Equal(got, want) {
		t.Fatalf("creates %v, want %v (db first: web depends on it)", got, want)
	}
	if got := f.callsWith("network create"); !slices.Equal(got, []string{"network create proj_back", "network create proj_front"}) {
		t.Fatalf("networks %v", got)
	}
	if got := f.callsWith("volume create"); !slices.Equal(got, []string{"volume create proj_data"}) {
		t.Fatalf("volumes %v", got)
	}
	if got := f.callsWith("network connect"); !slices.Equal(got, []string{"network connect proj_front proj-web-1"}) {
		t.Fatalf("connects %v", got)
	}
	web := f.containers["proj-web-1"].opts
	for k, v := range map[string]string{
		LabelProject: "proj", LabelService: "web", LabelNumber: "1", LabelOneoff: "False",
		LabelDependsOn: "db:service_healthy:false", LabelImage: "sha256:busybox", LabelWorkingDir: p.WorkingDir,
	} {
		if got := web.Config.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if len(web.Config.Labels[LabelConfigHash]) != 64 {
		t.Errorf("config hash %q", web.Config.Labels[LabelConfigHash])
	}
	if web.HostConfig.NetworkMode != "proj_back" || !slices.Contains(web.NetworkingConfig.EndpointsConfig["proj_back"].Aliases, "web") {
		t.Errorf("network mode %q endpoints %+v", web.HostConfig.NetworkMode, web.NetworkingConfig.EndpointsConfig)
	}
	if !slices.Contains(web.Config.Env, "GREETING=hello") || web.HostConfig.RestartPolicy.Name != "unless-stopped" {
		t.Errorf("env %v restart %v", web.Config.Env, web.HostConfig.RestartPolicy)
	}
	if len(web.HostConfig.PortBindings) != 1 {
		t.Errorf("ports %v", web.HostConfig.PortBindings)
	}
	db := f.containers["proj-db-1"].opts
	if db.HostConfig.Memory != 64<<20 || db.HostConfig.NanoCPUs != 5e8 || *db.HostConfig.PidsLimit != 100 {
		t.Errorf("limits mem=%d cpus=%d pids=%v", db.HostConfig.Memory, db.HostConfig.NanoCPUs, db.HostConfig.PidsLimit)
	}
	if !slices.Equal(db.HostConfig.Binds, []string{"proj_data:/data:rw"}) {
		t.Errorf("binds %v", db.HostConfig.Binds)
	}
	if f.networks["proj_back"].Labels[LabelNetwork] != "back" || f.volumes["proj_data"].Labels[LabelVolume] != "data" {
		t.Errorf("resource labels: %v %v", f.networks["proj_back"].Labels, f.volumes["proj_data"].Labels)
	}
	if !strings.Contains(progress.String(), " Container proj-db-1  Healthy\n") || !strings.Contains(progress.String(), " Container proj-web-1  Started\n") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

func TestUpRecreatesOnlyChangedServices(t *testing.T) {
	f := newFake("busybox")
	c := New(f, &bytes.Buffer{}, &bytes.Buffer{}, false, nil)
	ctx := context.Background()
	if err := c.Up(ctx, loadYAML(t, appYAML), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	f.calls = nil
	if err := c.Up(ctx, loadYAML(t, appYAML), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := append(f.callsWith("create"), f.callsWith("remove")...); len(got) != 0 {
		t.Fatalf("unchanged project recreated: %v", got)
	}
	f.calls = nil
	if err := c.Up(ctx, loadYAML(t, appYAML, "GREETING=bye"), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := append(f.callsWith("remove"), f.callsWith("create")...); !slices.Equal(got, []string{"remove proj-web-1", "create proj-web-1"}) {
		t.Fatalf("changing web's environment: %v, want web alone recreated", got)
	}
	f.calls = nil
	if err := c.Up(ctx, loadYAML(t, appYAML, "GREETING=bye"), UpOptions{ForceRecreate: true}); err != nil {
		t.Fatal(err)
	}
	if got := f.callsWith("create"); len(got) != 2 {
		t.Fatalf("--force-recreate: %v", got)
	}
}

func TestUpScaleAndDown(t *testing.T) {
	f := newFake("busybox")
	c := New(f, &bytes.Buffer{}, &bytes.Buffer{}, false, nil)
	ctx := context.Background()
	p := loadYAML(t, appYAML)
	if err := c.Up(ctx, p, UpOptions{Scale: map[string]int{"db": 3}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"proj-db-1", "proj-db-2", "proj-db-3"} {
		if f.containers[n] == nil {
			t.Fatalf("missing %s", n)
		}
	}
	if err := c.Up(ctx, loadYAML(t, appYAML), UpOptions{Scale: map[string]int{"db": 1}}); err != nil {
		t.Fatal(err)
	}
	if len(f.containers) != 2 || f.containers["proj-db-1"] == nil {
		t.Fatalf("after scale down: %v", f.containers)
	}
	if err := c.Down(ctx, p, DownOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(f.containers) != 0 || len(f.networks) != 0 || len(f.volumes) != 1 {
		t.Fatalf("down left containers=%d networks=%d volumes=%d", len(f.containers), len(f.networks), len(f.volumes))
	}
	if got := f.callsWith("remove"); got[len(got)-2] != "remove proj-web-1" || got[len(got)-1] != "remove proj-db-1" {
		t.Fatalf("down order %v: dependents go first", got)
	}
	if err := c.Down(ctx, p, DownOptions{Volumes: true}); err != nil {
		t.Fatal(err)
	}
	if len(f.volumes) != 0 {
		t.Fatalf("down -v left %v", f.volumes)
	}
}

func TestDependencyConditions(t *testing.T) {
	const y = `
services:
  migrate: {image: busybox}
  app:
    image: busybox
    depends_on:
      migrate: {condition: service_completed_successfully}
`
	ctx := context.Background()
	for _, tc := range []struct {
		exit    int
		wantErr string
	}{{0, ""}, {3, `service "migrate" didn't complete successfully: exit 3`}} {
		f := newFake("busybox")
		c := New(f, &bytes.Buffer{}, &bytes.Buffer{}, false, nil)
		// The fake's containers "exit" as soon as they are started.
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				f.mu.Lock()
				m := f.containers["proj-migrate-1"]
				if m != nil && m.state == "running" {
					m.state, m.exit = "exited", tc.exit
					f.mu.Unlock()
					return
				}
				f.mu.Unlock()
			}
		}()
		err := c.Up(ctx, loadYAML(t, y), UpOptions{})
		<-done
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Fatalf("exit %d: err %v, want %q", tc.exit, err, tc.wantErr)
		}
		if created := f.containers["proj-app-1"] != nil; created != (tc.exit == 0) {
			t.Fatalf("exit %d: app created=%v", tc.exit, created)
		}
	}

	// An unhealthy dependency stops the dependent from being created.
	f := newFake("busybox")
	f.containers["x"] = nil
	delete(f.containers, "x")
	c := New(f, &bytes.Buffer{}, &bytes.Buffer{}, false, nil)
	p := loadYAML(t, appYAML)
	if err := c.Up(ctx, p, UpOptions{Services: []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	f.containers["proj-db-1"].healthy = "unhealthy"
	err := c.Up(ctx, p, UpOptions{})
	if err == nil || !strings.Contains(err.Error(), "proj-db-1 is unhealthy") || f.containers["proj-web-1"] != nil {
		t.Fatalf("unhealthy dependency: err %v, web=%v", err, f.containers["proj-web-1"])
	}
}

func TestConfigHashStable(t *testing.T) {
	a := loadYAML(t, appYAML)
	b := loadYAML(t, appYAML)
	for _, n := range []string{"db", "web"} {
		ha, _ := ConfigHash(a.Services[n])
		hb, _ := ConfigHash(b.Services[n])
		if ha != hb {
			t.Fatalf("%s: hash differs between two loads", n)
		}
	}
	base, _ := ConfigHash(a.Services["web"])
	// Fields that only steer compose leave the hash alone...
	s := a.Services["web"]
	s.Scale = ptr(4)
	s.DependsOn = nil
	s.Profiles = []string{"x"}
	s.Build = &types.BuildConfig{Context: "."}
	if h, _ := ConfigHash(s); h != base {
		t.Fatal("scale/depends_on/profiles/build changed the hash")
	}
	// ...while container settings change it.
	s.Environment = types.MappingWithEquals{"GREETING": ptr("bye")}
	if h, _ := ConfigHash(s); h == base {
		t.Fatal("environment change did not change the hash")
	}
}

func TestStartOrderCycle(t *testing.T) {
	p := &types.Project{Name: "p", Services: types.Services{
		"a": {Name: "a", WorkloadSpec: types.WorkloadSpec{DependsOn: types.DependsOnConfig{"b": {Condition: "service_started", Required: true}}}},
		"b": {Name: "b", WorkloadSpec: types.WorkloadSpec{DependsOn: types.DependsOnConfig{"c": {Condition: "service_started", Required: true}}}},
		"c": {Name: "c", WorkloadSpec: types.WorkloadSpec{DependsOn: types.DependsOnConfig{"a": {Condition: "service_started", Required: true}}}},
		"d": {Name: "d"},
	}}
	_, err := startOrder(p, []string{"a"})
	if err == nil || !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), "dependency cycle detected: a -> b -> c -> a") {
		t.Fatalf("cycle: %v", err)
	}
	delete(p.Services, "c")
	b := p.Services["b"]
	b.DependsOn = types.DependsOnConfig{"c": {Condition: "service_started", Required: false}} // optional, disabled
	p.Services["b"] = b
	order, err := startOrder(p, []string{"a", "d"})
	if err != nil || !slices.Equal(order, []string{"b", "a", "d"}) {
		t.Fatalf("order %v %v", order, err)
	}
}

func TestBadInputCreatesNothing(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ name, yaml, env, want string }{
		{"invalid yaml", "services:\n  web: [unclosed\n", "", "yaml"},
		{"unknown key", "services:\n  web:\n    image: busybox\n    colour: red\n", "", "services.web additional properties 'colour' not allowed"},
		{"interpolation", "services:\n  web:\n    image: ${IMG:?set IMG please}\n", "", "set IMG please"},
		{"bad interpolation syntax", "services:\n  web:\n    image: ${IMG\n", "", "invalid interpolation"},
		{"cycle", "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n", "", "cycle"},
		{"missing dependency", "services:\n  a: {image: x, depends_on: [nope]}\n", "", "nope"},
		{"undefined network", "services:\n  a: {image: x, networks: [nope]}\n", "", "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "compose.yaml")
			os.WriteFile(file, []byte(tc.yaml), 0o644)
			_, err := Load(ctx, LoadOptions{Files: []string{file}, ProjectName: "p", Env: []string{}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errdefs.IsInvalidParameter(err) {
				t.Fatalf("err %v, want InvalidParameter mentioning %q", err, tc.want)
			}
		})
	}
	// A service whose conversion fails (a bad port host IP) stops up before
	// any network, volume or container exists.
	p := loadYAML(t, appYAML)
	web := p.Services["web"]
	web.Ports = []types.ServicePortConfig{{Target: 80, Published: "8080", HostIP: "not-an-ip"}}
	p.Services["web"] = web
	f := newFake("busybox")
	c := New(f, &bytes.Buffer{}, &bytes.Buffer{}, false, nil)
	if err := c.Up(ctx, p, UpOptions{}); err == nil || !strings.Contains(err.Error(), "not-an-ip") {
		t.Fatalf("bad host ip: %v", err)
	}
	if len(f.calls) != 0 {
		t.Fatalf("calls made before the error: %v", f.calls)
	}
}

func TestLoadOverridesProfilesEnvFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	base := write("compose.yaml", `
services:
  web:
    image: busybox:${TAG}
    environment: [A=1]
  debug:
    image: busybox
    profiles: [dev]
  child:
    extends: web
    environment: [B=2]
`)
	over := write("override.yaml", "services:\n  web:\n    environment: [A=2]\n")
	write(".env", "TAG=1.36\nCOMPOSE_PROJECT_NAME=fromenv\n")
	ctx := context.Background()
	p, err := Load(ctx, LoadOptions{Files: []string{base, over}, Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "fromenv" || p.Services["web"].Image != "busybox:1.36" || *p.Services["web"].Environment["A"] != "2" {
		t.Fatalf("name %q image %q env %v", p.Name, p.Services["web"].Image, p.Services["web"].Environment)
	}
	if _, ok := p.Services["debug"]; ok {
		t.Fatal("profiled service enabled without its profile")
	}
	if c := p.Services["child"]; c.Image != "busybox:1.36" || c.Environment["B"] == nil {
		t.Fatalf("extends: %+v", c)
	}
	p, err = Load(ctx, LoadOptions{Files: []string{base}, Profiles: []string{"dev"}, ProjectName: "Explicit_Name", Env: []string{}})
	if err == nil {
		t.Fatalf("invalid -p accepted: %q", p.Name)
	}
	p, err = Load(ctx, LoadOptions{Files: []string{base}, Profiles: []string{"dev"}, ProjectName: "explicit", Env: []string{"TAG=2"}})
	if err != nil || p.Name != "explicit" || p.Services["web"].Image != "busybox:2" {
		t.Fatalf("-p/profile/env: %v %+v", err, p)
	}
	if _, ok := p.Services["debug"]; !ok {
		t.Fatal("--profile dev did not enable debug")
	}
	// Without -p or COMPOSE_PROJECT_NAME the directory names the project.
	os.Remove(filepath.Join(dir, ".env"))
	p, err = Load(ctx, LoadOptions{Files: []string{base}, Env: []string{"TAG=3"}})
	if err != nil || p.Name != strings.ToLower(filepath.Base(dir)) {
		t.Fatalf("dir name: %v %q", err, p.Name)
	}
}

func TestBuildSendsContext(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile.web"), []byte("FROM busybox\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "big.log"), bytes.Repeat([]byte("x"), 1<<16), 0o644)
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("*.log\n"), 0o644)
	y := "services:\n  web:\n    build:\n      context: .\n      dockerfile: Dockerfile.web\n      target: final\n      args: {V: '1'}\n"
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(y), 0o644)
	p, err := Load(context.Background(), LoadOptions{Files: []string{filepath.Join(dir, "compose.yaml")}, ProjectName: "proj", Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	f := newFake("busybox")
	c := New(f, &bytes.Buffer{}, &bytes.Buffer{}, false, nil)
	if err := c.Up(context.Background(), p, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	got := f.callsWith("build")
	if len(got) != 1 || !strings.HasPrefix(got[0], "build proj-web dockerfile=Dockerfile.web target=final ctx=") {
		t.Fatalf("build calls %v", got)
	}
	var n int
	if _, err := fmtSscan(strings.TrimPrefix(got[0], "build proj-web dockerfile=Dockerfile.web target=final ctx="), &n); err != nil || n >= 1<<16 {
		t.Fatalf("context of %d bytes: .dockerignore'd file sent", n)
	}
	if f.containers["proj-web-1"].opts.Config.Image != "proj-web" {
		t.Fatalf("image %q", f.containers["proj-web-1"].opts.Config.Image)
	}
	// The image now exists: a second up does not build again.
	f.calls = nil
	c.Up(context.Background(), p, UpOptions{})
	if len(f.callsWith("build")) != 0 {
		t.Fatal("rebuilt an existing image without --build")
	}
}

func fmtSscan(s string, n *int) (int, error) { return fmt.Sscan(s, n) }

const sample = `
services:
  db:
    image: busybox
    volumes: [data:/data]
    healthcheck: {test: ["CMD", "true"], interval: 1s, retries: 3}
  web:
    image: busybox
    command: ["httpd", "-f"]
    environment: {A: "1", B: "${B_VALUE:-two}"}
    ports: ["127.0.0.1:8080:80/tcp"]
    depends_on: {db: {condition: service_healthy}}
    networks: {front: {aliases: [www]}, back: {}}
    deploy: {resources: {limits: {memory: 64M, cpus: "0.5", pids: 10}}}
    restart: on-failure:3
networks: {front: {}, back: {}}
volumes: {data: {}}
`

func TestCreateRequest(t *testing.T) {
	p := loadYAML(t, sample)
	spec, err := buildContainer(p, p.Services["web"], 1, "proj-web-1", "", false)
	if err != nil {
		t.Fatal(err)
	}
	cfg, hc, nc := spec.Create.Config, spec.Create.HostConfig, spec.Create.NetworkingConfig
	if strings.Join(cfg.Env, " ") != "A=1 B=two" || strings.Join(cfg.Cmd, " ") != "httpd -f" {
		t.Errorf("env %v cmd %v", cfg.Env, cfg.Cmd)
	}
	if hc.RestartPolicy.Name != "on-failure" || hc.RestartPolicy.MaximumRetryCount != 3 {
		t.Errorf("restart %+v", hc.RestartPolicy)
	}
	for pp, b := range hc.PortBindings {
		if pp.Num() != 80 || b[0].HostPort != "8080" || b[0].HostIP.String() != "127.0.0.1" {
			t.Errorf("port %v %+v", pp, b)
		}
	}
	if len(hc.PortBindings) != 1 {
		t.Errorf("ports %v", hc.PortBindings)
	}
	if string(hc.NetworkMode) != "proj_back" || len(nc.EndpointsConfig) != 1 {
		t.Errorf("networks: mode %s endpoints %v", hc.NetworkMode, nc.EndpointsConfig)
	}
	if ep := spec.MoreNets["proj_front"]; ep == nil || strings.Join(ep.Aliases, ",") != "web,www" {
		t.Errorf("front endpoint %+v", ep)
	}
	if hc.Memory != 64<<20 || hc.NanoCPUs != 5e8 || hc.PidsLimit == nil || *hc.PidsLimit != 10 {
		t.Errorf("limits: memory %d cpus %d pids %v", hc.Memory, hc.NanoCPUs, hc.PidsLimit)
	}
	if cfg.Healthcheck != nil {
		t.Errorf("web has no healthcheck, got %+v", cfg.Healthcheck)
	}
	db, err := buildContainer(p, p.Services["db"], 1, "proj-db-1", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if h := db.Create.Config.Healthcheck; h == nil || h.Retries != 3 || h.Interval.Seconds() != 1 || strings.Join(h.Test, " ") != "CMD true" {
		t.Errorf("db healthcheck %+v", h)
	}
	// Changing one service's environment changes its hash only.
	p3 := loadYAML(t, sample, "B_VALUE=three")
	h1, _ := ConfigHash(p.Services["web"])
	h3, _ := ConfigHash(p3.Services["web"])
	d1, _ := ConfigHash(p.Services["db"])
	d3, _ := ConfigHash(p3.Services["db"])
	if h1 == h3 || d1 != d3 {
		t.Errorf("hashes: web %v→%v db %v→%v", h1[:8], h3[:8], d1[:8], d3[:8])
	}
}

// down -p without a file removes what the labels say is the project's.
func TestDownWithoutFile(t *testing.T) {
	f := newFake("busybox")
	c := New(f, &bytes.Buffer{}, &bytes.Buffer{}, false, nil)
	ctx := context.Background()
	if err := c.Up(ctx, loadYAML(t, appYAML), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	f.volumes["other"] = volume.Volume{Name: "other", Labels: map[string]string{LabelProject: "someone-else"}}
	if err := c.Down(ctx, &types.Project{Name: "proj", Services: types.Services{}}, DownOptions{Volumes: true}); err != nil {
		t.Fatal(err)
	}
	if len(f.containers) != 0 || len(f.networks) != 0 || len(f.volumes) != 1 || f.volumes["other"].Name == "" {
		t.Fatalf("down -p left containers=%d networks=%v volumes=%v", len(f.containers), f.networks, f.volumes)
	}
}
