package compose

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/errdefs"
)

const appYAML = `
services:
  db:
    image: busybox
    volumes: [data:/data]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
    networks: [back]
  web:
    build:
      context: ./web
      dockerfile: Web.Dockerfile
      target: prod
      args: {GREETING: hi}
    ports: ["8081:8080"]
    environment:
      COLOR: ${COLOR:-blue}
    networks:
      back:
        aliases: [frontend]
    depends_on:
      db: {condition: service_healthy}
    deploy:
      resources:
        limits: {memory: 64M, cpus: "0.5", pids: 32}
    restart: unless-stopped
networks:
  back: {}
volumes:
  data: {}
`

// project writes files into a temp dir and loads them as project "app".
func project(t *testing.T, yaml string, env ...string) *types.Project {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "web"), 0o755)
	os.WriteFile(filepath.Join(dir, "web", "Web.Dockerfile"), []byte("FROM busybox\n"), 0o644)
	p, err := Load(context.Background(), LoadOptions{WorkingDir: dir, Name: "app", Environ: env})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

func newSvc(f *fakeAPI) *Service {
	return &Service{API: f, Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
}

func TestUpCreatesProjectObjects(t *testing.T) {
	f := newFake()
	p := project(t, appYAML)
	if err := newSvc(f).Up(context.Background(), p, UpOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	if got := f.networks["app_back"]; got[LabelProject] != "app" || got[LabelNetwork] != "back" {
		t.Errorf("network labels = %v", got)
	}
	if got := f.volumes["app_data"]; got[LabelProject] != "app" || got[LabelVolume] != "data" {
		t.Errorf("volume labels = %v", got)
	}
	builds := f.callsWith("build ")
	if len(builds) != 1 || builds[0] != "build app-web dockerfile=Web.Dockerfile target=prod args=GREETING=hi context=true" {
		t.Errorf("builds = %q", builds)
	}
	// db (the dependency) is created and started before web.
	want := []string{"create app-db-1", "start app-db-1", "create app-web-1", "start app-web-1"}
	var got []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, "create ") || strings.HasPrefix(c, "start ") {
			got = append(got, c)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("container calls = %q, want %q", got, want)
	}
	web := f.byName("app-web-1")
	l := web.opts.Config.Labels
	for k, v := range map[string]string{
		LabelProject: "app", LabelService: "web", LabelNumber: "1", LabelOneoff: "False",
		LabelDependsOn: "db:service_healthy:false", LabelImage: "sha256:built1",
	} {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q", k, l[k], v)
		}
	}
	if l[LabelConfigHash] == "" || l[LabelWorkingDir] == "" || !strings.HasSuffix(l[LabelConfigFiles], "compose.yaml") {
		t.Errorf("labels = %v", l)
	}
	hc := web.opts.HostConfig
	if hc.Memory != 64<<20 || hc.NanoCPUs != 5e8 || hc.PidsLimit == nil || *hc.PidsLimit != 32 {
		t.Errorf("limits: memory %d cpus %d pids %v", hc.Memory, hc.NanoCPUs, hc.PidsLimit)
	}
	if hc.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
		t.Errorf("restart = %v", hc.RestartPolicy)
	}
	if b := hc.PortBindings[network.MustParsePort("8080/tcp")]; len(b) != 1 || b[0].HostPort != "8081" {
		t.Errorf("port bindings = %v", hc.PortBindings)
	}
	if ep := web.opts.NetworkingConfig.EndpointsConfig["app_back"]; ep == nil || !slices.Equal(ep.Aliases, []string{"web", "frontend"}) {
		t.Errorf("endpoint = %+v", ep)
	}
	if string(hc.NetworkMode) != "app_back" {
		t.Errorf("network mode = %q", hc.NetworkMode)
	}
	if !slices.Contains(web.opts.Config.Env, "COLOR=blue") {
		t.Errorf("env = %v", web.opts.Config.Env)
	}
	db := f.byName("app-db-1")
	if !slices.Equal(db.opts.HostConfig.Binds, []string{"app_data:/data"}) {
		t.Errorf("db binds = %v", db.opts.HostConfig.Binds)
	}
	if db.opts.Config.Healthcheck == nil || db.opts.Config.Healthcheck.Interval.Seconds() != 1 {
		t.Errorf("db healthcheck = %+v", db.opts.Config.Healthcheck)
	}
}

func TestUpConvergesOnlyChangedServices(t *testing.T) {
	f := newFake()
	svc := newSvc(f)
	ctx := context.Background()
	if err := svc.Up(ctx, project(t, appYAML), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	f.reset()
	if err := svc.Up(ctx, project(t, appYAML), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	if c := append(f.callsWith("create"), f.callsWith("remove")...); len(c) != 0 {
		t.Errorf("unchanged project: %q", c)
	}
	f.reset()
	if err := svc.Up(ctx, project(t, appYAML, "COLOR=red"), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := f.callsWith("create"); !slices.Equal(got, []string{"create app-web-1"}) {
		t.Errorf("changed web env: creates %q", got)
	}
	if got := f.callsWith("remove"); !slices.Equal(got, []string{"remove app-web-1"}) {
		t.Errorf("changed web env: removes %q", got)
	}
	if !slices.Contains(f.byName("app-web-1").opts.Config.Env, "COLOR=red") {
		t.Error("recreated web lacks the new environment")
	}
	f.reset()
	if err := svc.Up(ctx, project(t, appYAML, "COLOR=red"), UpOptions{ForceRecreate: true, Services: []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	if got := f.callsWith("create"); !slices.Equal(got, []string{"create app-db-1"}) {
		t.Errorf("force-recreate db: %q", got)
	}
}

func TestUpScale(t *testing.T) {
	f := newFake()
	svc := newSvc(f)
	ctx := context.Background()
	p := project(t, `services: {w: {image: busybox}}`)
	if err := svc.Up(ctx, p, UpOptions{Scale: map[string]int{"w": 3}}); err != nil {
		t.Fatal(err)
	}
	if len(f.containers) != 3 || f.byName("app-w-3") == nil {
		t.Fatalf("scale 3: %d containers", len(f.containers))
	}
	if err := svc.Up(ctx, p, UpOptions{Scale: map[string]int{"w": 1}}); err != nil {
		t.Fatal(err)
	}
	if len(f.containers) != 1 || f.byName("app-w-1") == nil {
		t.Fatalf("scale 1: %d containers", len(f.containers))
	}
	if err := svc.Up(ctx, p, UpOptions{Scale: map[string]int{"nope": 1}}); err == nil {
		t.Error("scaling an unknown service succeeded")
	}
}

func TestUpDependencyConditions(t *testing.T) {
	yaml := `
services:
  db: {image: busybox, healthcheck: {test: ["CMD", "true"]}}
  seed: {image: busybox, depends_on: {db: {condition: service_healthy}}}
  web: {image: busybox, depends_on: {seed: {condition: service_completed_successfully}}}
`
	for _, tc := range []struct {
		name    string
		health  container.HealthStatus
		exit    int
		wantErr string
		created int
	}{
		{"all met", container.Healthy, 0, "", 3},
		{"unhealthy", container.Unhealthy, 0, "is unhealthy", 1},
		{"seed failed", container.Healthy, 3, "didn't complete successfully", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.health, f.exitCode = tc.health, tc.exit
			err := newSvc(f).Up(context.Background(), project(t, yaml), UpOptions{})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if len(f.containers) != tc.created {
				t.Log(f.calls)
				t.Errorf("%d containers created, want %d", len(f.containers), tc.created)
			}
		})
	}
}

func TestDownRemovesEverything(t *testing.T) {
	f := newFake()
	svc := newSvc(f)
	ctx := context.Background()
	p := project(t, appYAML)
	if err := svc.Up(ctx, p, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	f.networks["foreign"] = map[string]string{}
	if err := svc.Down(ctx, p, DownOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(f.containers) != 0 || f.networks["app_back"] != nil || f.volumes["app_data"] == nil {
		t.Errorf("after down: %d containers, networks %v, volumes %v", len(f.containers), f.networks, f.volumes)
	}
	// web (the dependent) goes before db.
	if got := f.callsWith("remove app-"); !slices.Equal(got, []string{"remove app-web-1", "remove app-db-1"}) {
		t.Errorf("remove order = %q", got)
	}
	if err := svc.Down(ctx, p, DownOptions{Volumes: true, RemoveImages: "local"}); err != nil {
		t.Fatal(err)
	}
	if len(f.volumes) != 0 || f.images["app-web"] != "" || f.images["busybox"] == "" {
		t.Errorf("after down -v --rmi local: volumes %v images %v", f.volumes, f.images)
	}
	if f.networks["foreign"] == nil {
		t.Error("down removed a network not in the project")
	}
}

func TestOrphans(t *testing.T) {
	f := newFake()
	svc := newSvc(f)
	ctx := context.Background()
	if err := svc.Up(ctx, project(t, `services: {a: {image: busybox}, b: {image: busybox}}`), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	p := project(t, `services: {a: {image: busybox}}`)
	if err := svc.Up(ctx, p, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	if f.byName("app-b-1") == nil || !strings.Contains(svc.Err.(*bytes.Buffer).String(), "orphan") {
		t.Fatal("orphan removed or not warned about without --remove-orphans")
	}
	if err := svc.Up(ctx, p, UpOptions{RemoveOrphans: true}); err != nil {
		t.Fatal(err)
	}
	if f.byName("app-b-1") != nil {
		t.Error("orphan kept with --remove-orphans")
	}
}

func TestConfigHash(t *testing.T) {
	base := project(t, appYAML).Services["web"]
	h1, _ := ConfigHash(base)
	h2, _ := ConfigHash(project(t, appYAML).Services["web"])
	if h1 != h2 || len(h1) != 64 {
		t.Fatalf("hash not stable: %s vs %s", h1, h2)
	}
	scaled := base
	n := 4
	scaled.Scale = &n
	scaled.Build = nil
	if h, _ := ConfigHash(scaled); h != h1 {
		t.Error("scale or build changed the config hash")
	}
	changed := project(t, appYAML, "COLOR=green").Services["web"]
	if h, _ := ConfigHash(changed); h == h1 {
		t.Error("environment change kept the config hash")
	}
	if h, _ := ConfigHash(project(t, appYAML, "COLOR=green").Services["db"]); h != mustHash(t, project(t, appYAML).Services["db"]) {
		t.Error("db's hash changed with web's environment")
	}
}

func mustHash(t *testing.T, s types.ServiceConfig) string {
	h, err := ConfigHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"invalid yaml", "services:\n  web:\n    image: [busybox\n", "yaml"},
		{"unknown key", "services:\n  web:\n    image: busybox\n    colour: red\n", "colour"},
		{"interpolation", "services:\n  web:\n    image: ${IMAGE:?IMAGE must be set}\n", "IMAGE must be set"},
		{"bad interpolation syntax", "services:\n  web:\n    image: ${IMAGE\n", "invalid"},
		{"cycle", "services:\n  a: {image: busybox, depends_on: [b]}\n  b: {image: busybox, depends_on: [a]}\n", "cycle"},
		{"no image", "services:\n  web: {command: [\"true\"]}\n", "neither an image nor a build"},
		{"undefined network", "services:\n  web: {image: busybox, networks: [nope]}\n", "nope"},
		{"undefined dependency", "services:\n  web: {image: busybox, depends_on: [db]}\n", "db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(tc.yaml), 0o644)
			_, err := Load(context.Background(), LoadOptions{WorkingDir: dir, Name: "bad"})
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if !errdefs.IsInvalidParameter(err) {
				t.Errorf("err %v is not InvalidParameter", err)
			}
		})
	}
}

func TestLoadFeatures(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("compose.yaml", `
services:
  base: {image: busybox, environment: {A: "1"}}
  web:
    extends: base
    env_file: web.env
    image: ${IMG}
  debug: {image: busybox, profiles: [debug]}
`)
	write("override.yaml", "services:\n  web:\n    environment: {B: \"2\"}\n")
	write("web.env", "C=3\n")
	write(".env", "IMG=busybox:1.36\n")
	load := func(o LoadOptions) *types.Project {
		t.Helper()
		o.WorkingDir = dir
		p, err := Load(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := load(LoadOptions{Files: []string{filepath.Join(dir, "compose.yaml"), filepath.Join(dir, "override.yaml")}, Name: "feat"})
	web := p.Services["web"]
	if web.Image != "busybox:1.36" {
		t.Errorf(".env interpolation: image = %q", web.Image)
	}
	for _, kv := range []string{"A=1", "B=2", "C=3"} {
		if !slices.Contains(environ(web.Environment), kv) {
			t.Errorf("environment %v lacks %s (extends, override, env_file)", environ(web.Environment), kv)
		}
	}
	if got := p.ServiceNames(); !slices.Equal(got, []string{"base", "web"}) {
		t.Errorf("services without profiles = %v", got)
	}
	p = load(LoadOptions{Profiles: []string{"debug"}})
	if _, ok := p.Services["debug"]; !ok {
		t.Error("--profile debug did not enable debug")
	}
	if p.Name != strings.ToLower(filepath.Base(dir)) {
		t.Errorf("project name from directory = %q", p.Name)
	}
	p = load(LoadOptions{Environ: []string{"COMPOSE_PROJECT_NAME=fromenv"}})
	if p.Name != "fromenv" {
		t.Errorf("COMPOSE_PROJECT_NAME: name = %q", p.Name)
	}
}

func TestSecretsConfigsUlimits(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw.txt"), []byte("s3cret"), 0o600)
	os.WriteFile(filepath.Join(dir, "app.conf"), []byte("x=1"), 0o644)
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(`
services:
  app:
    image: busybox
    secrets: [pw]
    configs: [{source: conf, target: /etc/app.conf}]
    ulimits: {nofile: {soft: 100, hard: 200}, nproc: 50}
secrets:
  pw: {file: ./pw.txt}
configs:
  conf: {file: ./app.conf}
`), 0o644)
	p, err := Load(context.Background(), LoadOptions{WorkingDir: dir, Name: "sc"})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := (&Service{}).createOptions(p, p.Services["app"], 1, "h", "", false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "pw.txt") + ":/run/secrets/pw:ro", filepath.Join(dir, "app.conf") + ":/etc/app.conf:ro"}
	if !slices.Equal(opts.HostConfig.Binds, want) {
		t.Errorf("binds = %q, want %q", opts.HostConfig.Binds, want)
	}
	u := opts.HostConfig.Ulimits
	if len(u) != 2 || u[0].Name != "nofile" || u[0].Soft != 100 || u[0].Hard != 200 || u[1].Name != "nproc" || u[1].Hard != 50 {
		t.Errorf("ulimits = %+v %+v", u[0], u[1])
	}
}

// down -p without a file finds the project's objects by their labels.
func TestDownWithoutModel(t *testing.T) {
	f := newFake()
	svc := newSvc(f)
	ctx := context.Background()
	if err := svc.Up(ctx, project(t, appYAML), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	f.volumes["other"] = map[string]string{LabelProject: "someone-else"}
	if err := svc.Down(ctx, &types.Project{Name: "app"}, DownOptions{Volumes: true}); err != nil {
		t.Fatal(err)
	}
	if len(f.containers) != 0 || f.networks["app_back"] != nil || f.volumes["app_data"] != nil {
		t.Errorf("left: %d containers, networks %v, volumes %v", len(f.containers), f.networks, f.volumes)
	}
	if f.volumes["other"] == nil {
		t.Error("removed another project's volume")
	}
}
