package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const captures = "/work/shared/reference/docker-cli-traffic"

// captureRequests extracts the request lines the docker CLI sent in a
// reference capture, with container IDs replaced by ID.
func captureRequests(t *testing.T, name string) ([]string, []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(captures, name))
	if err != nil {
		t.Skipf("reference captures not available: %v", err)
	}
	reqRE := regexp.MustCompile(`(?m)^(HEAD|GET|POST|DELETE|PUT) (\S+) HTTP/1.1`)
	var reqs []string
	for _, m := range reqRE.FindAllStringSubmatch(string(data), -1) {
		reqs = append(reqs, m[1]+" "+normIDs(m[2]))
	}
	var bodies []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, `{"Hostname"`) {
			bodies = append(bodies, l)
		}
	}
	return reqs, bodies
}

var idRE = regexp.MustCompile(`[0-9a-f]{64}`)

func normIDs(s string) string { return idRE.ReplaceAllString(s, "ID") }

func normAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = normIDs(s)
	}
	return out
}

func TestRunRmMatchesDockerTraffic(t *testing.T) {
	want, bodies := captureRequests(t, "run-rm.txt")
	d := newFakeDaemon(t)
	d.stderr = "warn\n"
	stdout, stderr, err := runCLI(t, d, "", "run", "--rm", "busybox:local", "echo", "hi")
	if err != nil {
		t.Fatalf("run: %v (stderr %q)", err, stderr)
	}
	if stdout != "hi\n" || stderr != "warn\n" {
		t.Errorf("stdout %q stderr %q, want demultiplexed hi / warn", stdout, stderr)
	}
	if got := normAll(d.log()); !reflect.DeepEqual(got, want) {
		t.Errorf("requests differ from docker's:\n got  %q\n want %q", got, want)
	}
	compareCreateBody(t, d.createBody, bodies[0])
}

func TestRunDetachedMatchesDockerTraffic(t *testing.T) {
	want, _ := captureRequests(t, "run-d.txt")
	d := newFakeDaemon(t)
	stdout, _, err := runCLI(t, d, "", "run", "-d", "--name", "rsx-web", "-p", "18080:80", "busybox:local", "sh", "-c", "true")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != fakeID+"\n" {
		t.Errorf("stdout %q, want the full ID", stdout)
	}
	if got := normAll(d.log()); !reflect.DeepEqual(got, want) {
		t.Errorf("requests differ from docker's:\n got  %q\n want %q", got, want)
	}
	var body map[string]any
	if err := json.Unmarshal(d.createBody, &body); err != nil {
		t.Fatal(err)
	}
	if body["AttachStdout"] != false || body["AttachStderr"] != false {
		t.Errorf("detached run attaches: %v %v", body["AttachStdout"], body["AttachStderr"])
	}
	pb, _ := json.Marshal(body["HostConfig"].(map[string]any)["PortBindings"])
	if string(pb) != `{"80/tcp":[{"HostIp":"","HostPort":"18080"}]}` {
		t.Errorf("PortBindings %s", pb)
	}
}

func TestRunInteractiveSendsStdin(t *testing.T) {
	// run-i.txt interleaves the wait request line with another chunk, so
	// the order is spelled out here (same as run-rm.txt).
	want := []string{"HEAD /_ping", "POST /v1.41/containers/create",
		"POST /v1.41/containers/ID/attach?stderr=1&stdin=1&stdout=1&stream=1",
		"POST /v1.41/containers/ID/wait?condition=removed", "POST /v1.41/containers/ID/start"}
	d := newFakeDaemon(t)
	stdout, _, err := runCLI(t, d, "hello from stdin\n", "run", "-i", "--rm", "busybox:local", "cat")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "hi\n" {
		t.Errorf("stdout %q", stdout)
	}
	if got := normAll(d.log()); !reflect.DeepEqual(got, want) {
		t.Errorf("requests differ from docker's:\n got  %q\n want %q", got, want)
	}
	d.mu.Lock()
	seen := d.stdinSeen.String()
	d.mu.Unlock()
	if seen != "hello from stdin\n" {
		t.Errorf("daemon got stdin %q", seen)
	}
}

func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		exit     int
		startErr string
		wantCode int
	}{
		{name: "container exit code", exit: 3, wantCode: 3},
		{name: "success", exit: 0, wantCode: 0},
		{name: "not found", startErr: `exec: \"nope\": executable file not found in $PATH`, wantCode: 127},
		{name: "not executable", startErr: `exec /etc/passwd: permission denied`, wantCode: 126},
		{name: "other daemon error", startErr: `cgroup setup failed`, wantCode: 125},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newFakeDaemon(t)
			d.exitCode = tc.exit
			d.startErr, d.startSC = tc.startErr, 500
			_, stderr, err := runCLI(t, d, "", "run", "busybox:local", "x")
			code := 0
			if err != nil {
				var ok bool
				if code, ok = ExitCode(err); !ok {
					t.Fatalf("error without exit code: %v", err)
				}
			}
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d", code, tc.wantCode)
			}
			if tc.startErr != "" && !strings.Contains(stderr, "berth: Error response from daemon: ") {
				t.Errorf("stderr %q lacks the daemon error", stderr)
			}
		})
	}
}

// Usage errors read and exit like docker 28's (checked against the real
// docker CLI): bad flags 125, wrong argument counts 1.
func TestUsageErrors(t *testing.T) {
	d := newFakeDaemon(t)
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"run", "--memory", "lots", "busybox"}, 125, "invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: 'lots'\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n"},
		{[]string{"run", "--cpus", "abc", "busybox"}, 125, "invalid argument \"abc\" for \"--cpus\" flag: failed to parse abc as a rational number\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n"},
		{[]string{"ps", "--bogus"}, 125, "unknown flag: --bogus\n\nUsage:  berth ps [OPTIONS]\n\nRun 'berth ps --help' for more information\n"},
		{[]string{"run", "--rm", "--restart", "always", "busybox"}, 125, "berth: conflicting options: cannot specify both --restart and --rm\n\nRun 'berth run --help' for more information\n"},
		{[]string{"run"}, 1, "berth: 'berth run' requires at least 1 argument\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nSee 'berth run --help' for more information\n"},
		{[]string{"rm"}, 1, "berth: 'berth rm' requires at least 1 argument\n\nUsage:  berth rm [OPTIONS] CONTAINER [CONTAINER...]\n\nSee 'berth rm --help' for more information\n"},
		{[]string{"ps", "x"}, 1, "berth: 'berth ps' accepts no arguments\n\nUsage:  berth ps [OPTIONS]\n\nRun 'berth ps --help' for more information\n"},
		{[]string{"logs"}, 1, "berth: 'berth logs' requires 1 argument\n\nUsage:  berth logs [OPTIONS] CONTAINER\n\nRun 'berth logs --help' for more information\n"},
	} {
		_, stderr, err := runCLI(t, d, "", tc.args...)
		code, ok := ExitCode(err)
		if !ok && err != nil {
			code = 1 // what cmd/berth does with a plain error
			stderr += err.Error() + "\n"
		}
		if code != tc.code || stderr != tc.stderr {
			t.Errorf("%v: exit %d, stderr %q; want %d, %q", tc.args, code, stderr, tc.code, tc.stderr)
		}
	}
	if n := len(d.log()); n != 0 {
		t.Errorf("usage errors still talked to the daemon: %q", d.log())
	}
}

func TestRunTTYCopiesRawStream(t *testing.T) {
	d := newFakeDaemon(t)
	d.tty = true
	d.stdout = "raw\r\n"
	stdout, _, err := runCLI(t, d, "", "run", "-t", "--rm", "busybox:local", "sh")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "raw\r\n" {
		t.Errorf("stdout %q", stdout)
	}
	var body map[string]any
	_ = json.Unmarshal(d.createBody, &body)
	if body["Tty"] != true {
		t.Errorf("Tty not requested: %v", body["Tty"])
	}
}

// compareCreateBody checks that every field docker's CLI sent has the
// same value in berth's request (fields newer API types add are allowed).
func compareCreateBody(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w map[string]any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("berth create body: %v", err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("docker create body: %v", err)
	}
	for _, diff := range diffJSON("", w, g) {
		t.Errorf("create body: %s", diff)
	}
}

func diffJSON(path string, want, got any) []string {
	wm, ok := want.(map[string]any)
	if !ok {
		if !reflect.DeepEqual(want, got) {
			return []string{path + ": docker sends " + mustJSON(want) + ", berth " + mustJSON(got)}
		}
		return nil
	}
	gm, ok := got.(map[string]any)
	if !ok {
		return []string{path + ": docker sends an object, berth " + mustJSON(got)}
	}
	var out []string
	for k, wv := range wm {
		gv, present := gm[k]
		if !present {
			// Zero values omitted by newer API types mean the same thing.
			if isZero(wv) {
				continue
			}
			out = append(out, path+"."+k+": missing (docker sends "+mustJSON(wv)+")")
			continue
		}
		out = append(out, diffJSON(path+"."+k, wv, gv)...)
	}
	return out
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestRunPullsMissingImage(t *testing.T) {
	want, _ := captureRequests(t, "run-pull.txt")
	d := newFakeDaemon(t)
	d.missing = true
	stdout, stderr, err := runCLI(t, d, "", "run", "--rm", "127.0.0.1:5099/rsx/built:1")
	if err != nil {
		t.Fatalf("run: %v (stderr %q)", err, stderr)
	}
	if got := normAll(d.log()); !reflect.DeepEqual(got, want) {
		t.Errorf("requests differ from docker's:\n got  %q\n want %q", got, want)
	}
	if !strings.HasPrefix(stderr, "Unable to find image '127.0.0.1:5099/rsx/built:1' locally\n1: Pulling from rsx/built\n") ||
		!strings.Contains(stderr, "Status: Downloaded newer image") || stdout != "hi\n" {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}
}
