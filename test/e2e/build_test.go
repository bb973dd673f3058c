package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// buildContextDir writes a build context for the tests.
func buildContextDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func (e *env) dockerWith(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerBin, args...)
	cmd.Env = append(e.dockerEnv(), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBuildWithDockerCLI(t *testing.T) {
	e := need(t)
	dir := buildContextDir(t, map[string]string{
		"Dockerfile":    "FROM busybox\nCOPY msg.txt /msg.txt\nRUN echo built > /b && cat /msg.txt\nCMD [\"cat\",\"/b\"]\n",
		"msg.txt":       "from the context\n",
		"ignored.log":   "x",
		".dockerignore": "*.log\n",
	})
	for _, mode := range []string{"DOCKER_BUILDKIT=0", "DOCKER_BUILDKIT="} {
		t.Run(mode, func(t *testing.T) {
			r := e.dockerWith(t, []string{mode}, "build", "-t", "e2e-build:1", dir)
			if r.code != 0 {
				t.Fatalf("docker build: %s", r)
			}
			for _, want := range []string{"Step 1/4 : FROM busybox", "Step 3/4 : RUN echo built > /b && cat /msg.txt", "Successfully built ", "Successfully tagged e2e-build:1"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("output lacks %q:\n%s", want, r.stdout)
				}
			}
		})
	}
	if out := e.ok(t, "run", "--rm", "e2e-build:1"); out != "built\n" {
		t.Errorf("run built image: %q", out)
	}
	// The second build above was served from the cache.
	r := e.dockerWith(t, []string{"DOCKER_BUILDKIT=0"}, "build", dir)
	if strings.Count(r.stdout, "Using cache") != 3 {
		t.Errorf("rebuild did not use the cache:\n%s", r.stdout)
	}
	// .dockerignore'd files never reach the daemon.
	r = e.dockerWith(t, []string{"DOCKER_BUILDKIT=0"}, "build", "-q", "-f", "-", dir)
	_ = r
	df := "FROM busybox\nCOPY ignored.log /x\n"
	r = e.dockerWith(t, []string{"DOCKER_BUILDKIT=0"}, "build", "-f", writeFile(t, df), dir)
	if r.code == 0 || !strings.Contains(r.stderr, "file not found in build context or excluded by .dockerignore") {
		t.Errorf("COPY of an ignored file: %s", r)
	}
	// -q prints only the ID.
	r = e.dockerWith(t, []string{"DOCKER_BUILDKIT=0"}, "build", "-q", dir)
	if r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.stdout), "sha256:") || strings.Contains(r.stdout, "Step") {
		t.Errorf("build -q: %s", r)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "Dockerfile.alt")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildFailuresWithDockerCLI(t *testing.T) {
	e := need(t)
	cases := []struct {
		name, df   string
		code       int
		wantStderr string
		wantStdout string
	}{
		{"failing RUN", "FROM busybox\nRUN echo failing; exit 3\n", 3, "The command '/bin/sh -c echo failing; exit 3' returned a non-zero code: 3", "failing\n"},
		{"unknown instruction", "FROM busybox\nFROB x\n", 1, "dockerfile parse error on line 2: unknown instruction: FROB", ""},
		{"outside context", "FROM busybox\nCOPY ../x /x\n", 1, "forbidden path outside the build context", ""},
		{"missing base", "FROM 127.0.0.1:9/e2e-no-such-image:1\n", 1, "e2e-no-such-image:1", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := buildContextDir(t, map[string]string{"Dockerfile": c.df})
			r := e.dockerWith(t, []string{"DOCKER_BUILDKIT=0"}, "build", dir)
			if r.code != c.code || !strings.Contains(r.stderr, c.wantStderr) || !strings.Contains(r.stdout, c.wantStdout) {
				t.Errorf("want exit %d with %q: %s", c.code, c.wantStderr, r)
			}
		})
	}
}

func TestBuildAlpineWithDockerCLI(t *testing.T) {
	e := need(t)
	const dir = "/work/shared/images/alpine"
	if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil {
		t.Skipf("skipping: %s is absent", dir)
	}
	r := e.dockerWith(t, []string{"DOCKER_BUILDKIT=0"}, "build", "-t", "e2e-alpine:built", dir)
	if r.code != 0 {
		t.Fatalf("docker build alpine: %s", r)
	}
	if out := e.ok(t, "run", "--rm", "e2e-alpine:built", "cat", "/etc/alpine-release"); strings.TrimSpace(out) != "3.20.3" {
		t.Errorf("alpine-release %q", out)
	}
	if out := e.ok(t, "run", "--rm", "e2e-alpine:built", "sh", "-c", "apk --version >/dev/null && echo ok"); out != "ok\n" {
		t.Errorf("apk in built alpine: %q", out)
	}
	r = e.berthCLI(t, "", "builder", "prune", "-f")
	if r.code != 0 || !strings.Contains(r.stdout, "Total reclaimed space:") {
		t.Errorf("builder prune: %s", r)
	}
}

// fsDump lists every path of an image's filesystem with mode, owner, type
// and content checksum, from inside a container of it.
const fsDump = `find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /etc/hosts -o -path /etc/hostname -o -path /etc/resolv.conf -o -path /etc/mtab -o -path /.dockerenv %s \) -prune -o -print | sort | while read -r f; do stat -c '%%n %%a %%u:%%g %%F' "$f"; [ -f "$f" ] && [ ! -L "$f" ] && md5sum "$f" | cut -c1-32; done; true`

// TestBuildMatchesDockerd builds one Dockerfile with berth and with
// dockerd's classic builder and compares the images' configs and files.
func TestBuildMatchesDockerd(t *testing.T) {
	e := need(t)
	d := startDockerd(t) // security_test.go: dockerd on its own roots, busybox imported
	dockerdEnv := []string{"DOCKER_HOST=unix://" + d.sock, "DOCKER_BUILDKIT=0"}
	dir := buildContextDir(t, map[string]string{
		"a.txt": "one\n", "b.txt": "two\n", "tree/sub/d": "deep\n", "tree/top": "top\n",
		"Dockerfile": `FROM busybox AS builder
RUN mkdir -p /out && echo built > /out/artifact && echo more > /out/more

FROM busybox
ARG VERSION=1.0
ENV APP_HOME=/srv/app LANG=C.UTF-8
WORKDIR $APP_HOME
COPY a.txt b.txt ./
COPY tree /opt/tree/
COPY --chown=1000:50 a.txt /owned/a.txt
COPY --from=builder /out /artifacts
RUN echo "$VERSION" > version && rm /opt/tree/sub/d && mkdir -m 700 /private
LABEL org.opencontainers.image.version=$VERSION maintainer="berth"
EXPOSE 8080 9090/udp
USER 1000:50
VOLUME ["/data"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=3s CMD wget -q localhost:8080 || exit 1
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hello"]
`,
	})
	os.Chmod(filepath.Join(dir, "tree/sub"), 0o750)
	type side struct {
		name string
		env  []string
		cfg  map[string]any
		fs   string
	}
	sides := []*side{{name: "berth", env: []string{"DOCKER_BUILDKIT=0"}}, {name: "dockerd", env: dockerdEnv}}
	for _, s := range sides {
		r := e.dockerWith(t, s.env, "build", "-q", "-t", "cmp-build:1", dir)
		if r.code != 0 {
			t.Fatalf("%s build: %s", s.name, r)
		}
		r = e.dockerWith(t, s.env, "image", "inspect", "-f", "{{json .Config}}", "cmp-build:1")
		if err := json.Unmarshal([]byte(r.stdout), &s.cfg); err != nil {
			t.Fatalf("%s inspect: %v %s", s.name, err, r)
		}
		r = e.dockerWith(t, s.env, "run", "--rm", "--entrypoint", "sh", "-u", "0", "cmp-build:1", "-c", fmt.Sprintf(fsDump, "-o -path /data"))
		if r.code != 0 {
			t.Fatalf("%s fs dump: %s", s.name, r)
		}
		s.fs = r.stdout
	}
	for _, k := range []string{"Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels", "StopSignal", "Healthcheck", "OnBuild", "Shell"} {
		if !reflect.DeepEqual(sides[0].cfg[k], sides[1].cfg[k]) {
			t.Errorf("config %s: berth %v, dockerd %v", k, sides[0].cfg[k], sides[1].cfg[k])
		}
	}
	if sides[0].fs != sides[1].fs {
		t.Errorf("filesystems differ:\n%s", lineDiff(sides[1].fs, sides[0].fs))
	}
}
