package compose

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
)

func load(t *testing.T, yaml string, env ...string) (*types.Project, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(context.Background(), LoadOptions{WorkingDir: dir, ProjectName: "proj", Files: []string{filepath.Join(dir, "compose.yaml")}, Env: env})
}

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
	p, err := load(t, sample)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Services["web"]
	cfg, hc, nc, err := createRequest(p, s, 1, "h")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Labels[LabelProject] != "proj" || cfg.Labels[LabelService] != "web" || cfg.Labels[LabelNumber] != "1" || cfg.Labels[LabelConfigHash] != "h" {
		t.Errorf("labels %v", cfg.Labels)
	}
	if strings.Join(cfg.Env, " ") != "A=1 B=two" {
		t.Errorf("env %v", cfg.Env)
	}
	if hc.Memory != 64<<20 || hc.NanoCPUs != 5e8 || hc.PidsLimit == nil || *hc.PidsLimit != 10 {
		t.Errorf("limits: memory %d cpus %d pids %v", hc.Memory, hc.NanoCPUs, hc.PidsLimit)
	}
	if hc.RestartPolicy.Name != container.RestartPolicyOnFailure || hc.RestartPolicy.MaximumRetryCount != 3 {
		t.Errorf("restart %+v", hc.RestartPolicy)
	}
	if len(hc.PortBindings) != 1 {
		t.Errorf("ports %v", hc.PortBindings)
	}
	for pp, b := range hc.PortBindings {
		if pp.Num() != 80 || b[0].HostPort != "8080" || b[0].HostIP.String() != "127.0.0.1" {
			t.Errorf("port %v %+v", pp, b)
		}
	}
	if string(hc.NetworkMode) != "proj_back" || len(nc.EndpointsConfig) != 2 {
		t.Errorf("networks: mode %s endpoints %v", hc.NetworkMode, nc.EndpointsConfig)
	}
	if ep := nc.EndpointsConfig["proj_front"]; ep == nil || strings.Join(ep.Aliases, ",") != "web,www" {
		t.Errorf("front endpoint %+v", ep)
	}
	_, dhc, _, err := createRequest(p, p.Services["db"], 1, "h")
	if err != nil {
		t.Fatal(err)
	}
	if len(dhc.Mounts) != 1 || dhc.Mounts[0].Source != "proj_data" || dhc.Mounts[0].Target != "/data" {
		t.Errorf("db mounts %+v", dhc.Mounts)
	}
	if got := order(p, nil); strings.Join(got, ",") != "db,web" {
		t.Errorf("order %v", got)
	}
}

func TestConfigHash(t *testing.T) {
	p1, err := load(t, sample)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := load(t, sample)
	if err != nil {
		t.Fatal(err)
	}
	if ConfigHash(p1.Services["web"], "img") != ConfigHash(p2.Services["web"], "img") {
		t.Error("the same configuration hashed differently")
	}
	p3, err := load(t, sample, "B_VALUE=three")
	if err != nil {
		t.Fatal(err)
	}
	if ConfigHash(p1.Services["web"], "img") == ConfigHash(p3.Services["web"], "img") {
		t.Error("a changed environment kept the hash")
	}
	if ConfigHash(p1.Services["db"], "img") != ConfigHash(p3.Services["db"], "img") {
		t.Error("an unchanged service got a new hash")
	}
	if ConfigHash(p1.Services["web"], "img") == ConfigHash(p1.Services["web"], "other") {
		t.Error("a new image kept the hash")
	}
}

func TestLoadRefusesBadProjects(t *testing.T) {
	for name, yaml := range map[string]string{
		"cycle":        "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n",
		"unknown key":  "services:\n  a: {image: x, bogus: 1}\n",
		"bad yaml":     "services: [\n",
		"missing dep":  "services:\n  a: {image: x, depends_on: [nope]}\n",
		"interpolated": "services:\n  a: {image: \"${X:?X is required}\"}\n",
	} {
		if _, err := load(t, yaml); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

// FuzzLoad feeds compose files to the loader: errors are fine, panics not.
func FuzzLoad(f *testing.F) {
	f.Add(sample)
	f.Add("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x}\n")
	f.Fuzz(func(t *testing.T, yaml string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := Load(context.Background(), LoadOptions{WorkingDir: dir, ProjectName: "fz", Files: []string{filepath.Join(dir, "compose.yaml")}})
		if err != nil {
			return
		}
		for _, name := range order(p, nil) {
			createRequest(p, p.Services[name], 1, "h")
		}
	})
}
