package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// captureJSONLines returns the lines of a capture that start with prefix,
// with socat's doubled backslashes undone.
func captureJSONLines(t *testing.T, name, prefix string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(captures, name))
	if err != nil {
		t.Skipf("reference captures not available: %v", err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, strings.ReplaceAll(strings.TrimSuffix(l, "\r"), `\\`, `\`))
		}
	}
	return out
}

func TestImagesMatchesDockerTraffic(t *testing.T) {
	want, _ := captureRequests(t, "images.txt")
	d := newFakeDaemon(t)
	d.images = captureJSONLines(t, "images.txt", `[{"Containers"`)[0]
	stdout, _, err := runCLI(t, d, "", "images", "--format", "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}")
	if err != nil {
		t.Fatal(err)
	}
	if got := d.log(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
	wantOut := "" +
		"REPOSITORY              TAG       IMAGE ID       SIZE\n" +
		"127.0.0.1:5077/debian   1         c9048798b67e   199MB\n" +
		"alpine                  3.20      d3544b50d6e1   7.8MB\n" +
		"t2                      latest    1ce2a8aabeb1   3.98MB\n" +
		"t1                      latest    db5c6fc4c8b2   3.98MB\n" +
		"busybox                 local     200d1e20a2c5   1.98MB\n"
	if stdout != wantOut {
		t.Errorf("images:\n%s\nwant:\n%s", stdout, wantOut)
	}
	stdout, _, err = runCLI(t, d, "", "image", "ls", "--digests", "--format", "{{.Repository}} {{.Digest}}", "127.0.0.1:5077/debian")
	if err != nil || !strings.HasPrefix(stdout, "127.0.0.1:5077/debian sha256:38c4c2c5") {
		t.Errorf("--digests: %q, %v", stdout, err)
	}
	if log := d.log(); log[len(log)-1] != `GET /v1.41/images/json?filters=%7B%22reference%22%3A%7B%22127.0.0.1%3A5077%2Fdebian%22%3Atrue%7D%7D` {
		t.Errorf("images REPO sent %q", log[len(log)-1])
	}
}

func TestEventsDefaultFormat(t *testing.T) {
	d := newFakeDaemon(t)
	d.events = captureJSONLines(t, "events.txt", `{"`)[:3]
	stdout, _, err := runCLI(t, d, "", "events", "--since", "1795364380", "--until", "1795364500")
	if err != nil {
		t.Fatal(err)
	}
	if log := d.log(); log[len(log)-1] != "GET /v1.41/events?since=1795364380&until=1795364500" {
		t.Errorf("events sent %q", log[len(log)-1])
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	ts := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) `
	wantRE := []string{
		ts + `container create dc91c2d816abeeed309acd948fb11557b35c83f7ea556bc1cb3200e581bc247b \(image=sha256:200d1e20a2c5aa916fde2e366c98b6b3ae7cb9daeec6dbcc00d2cfca875887d6, name=vibrant_newton\)$`,
		ts + `container attach dc91c2d816ab`,
		ts + `network connect 62a05e42c9802a198dc65af1ffd278b8c5d8c2abf394a706b83e1a46827e6225 \(container=dc91c2d816abeeed309acd948fb11557b35c83f7ea556bc1cb3200e581bc247b, name=bridge, type=bridge\)$`,
	}
	if len(lines) != len(wantRE) {
		t.Fatalf("events output:\n%s", stdout)
	}
	for i, re := range wantRE {
		if !regexp.MustCompile("^" + re).MatchString(lines[i]) {
			t.Errorf("line %d %q does not match %s", i, lines[i], re)
		}
	}
	stdout, _, err = runCLI(t, d, "", "events", "--until", "1795364500", "-f", "type=container", "--format", "{{.Type}}/{{.Action}}/{{.Actor.Attributes.name}}")
	if err != nil || stdout != "container/create/vibrant_newton\ncontainer/attach/vibrant_newton\nnetwork/connect/bridge\n" {
		t.Errorf("events --format: %q, %v", stdout, err)
	}
}

func TestImportSendsStdinAndChanges(t *testing.T) {
	d := newFakeDaemon(t)
	stdout, _, err := runCLI(t, d, "rootfs-tar-bytes", "import", "-c", `CMD ["/bin/sh"]`, "-c", "ENV A=b", "-m", "first", "-", "busybox:imported")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "sha256:2714e32610d69ba430e46aa1bbbefb4eca7242cd8cf643636941a2edf483368e\n" {
		t.Errorf("stdout %q", stdout)
	}
	want := "POST /v1.41/images/create?changes=CMD+%5B%22%2Fbin%2Fsh%22%5D&changes=ENV+A%3Db&fromSrc=-&message=first&repo=busybox%3Aimported"
	if log := d.log(); log[len(log)-1] != want {
		t.Errorf("import sent %q\nwant %q", log[len(log)-1], want)
	}
	if string(d.imported) != "rootfs-tar-bytes" {
		t.Errorf("daemon got body %q", d.imported)
	}
	// A file argument is uploaded the same way.
	f := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(f, []byte("from-a-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, d, "", "image", "import", f); err != nil || string(d.imported) != "from-a-file" {
		t.Errorf("import FILE: %v, body %q", err, d.imported)
	}
}

func TestStartAttachAndWait(t *testing.T) {
	d := newFakeDaemon(t)
	d.exitCode = 4
	stdout, _, err := runCLI(t, d, "", "start", "-a", "web")
	if code, _ := ExitCode(err); code != 4 || stdout != "hi\n" {
		t.Errorf("start -a: %q, exit %d (%v)", stdout, code, err)
	}
	want := []string{"HEAD /_ping", "GET /v1.41/containers/web/json",
		"POST /v1.41/containers/" + fakeID + "/attach?stderr=1&stdout=1&stream=1",
		"POST /v1.41/containers/" + fakeID + "/wait?condition=next-exit",
		"POST /v1.41/containers/" + fakeID + "/start"}
	if got := d.log(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %q\nwant %q", got, want)
	}
	stdout, _, err = runCLI(t, d, "", "container", "wait", "web")
	if err != nil || stdout != "4\n" {
		t.Errorf("wait: %q, %v", stdout, err)
	}
}

func TestInfoLayout(t *testing.T) {
	want, _ := captureRequests(t, "info.txt")
	d := newFakeDaemon(t)
	d.info = captureJSONLines(t, "info.txt", `{"ID"`)[0]
	stdout, _, err := runCLI(t, d, "", "info")
	if err != nil {
		t.Fatal(err)
	}
	if got := d.log(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
	for _, line := range []string{
		"Client:\n Version:    test\n Context:    default\n Debug Mode: false\n\nServer:\n Containers: ",
		"\n Storage Driver: overlay2\n",
		"\n Plugins:\n  Volume: local\n",
		"\n Swarm: inactive\n",
		"\n Security Options:\n  seccomp\n   Profile: default\n",
		"\n Live Restore Enabled: false\n\n",
	} {
		if !strings.Contains(stdout, line) {
			t.Errorf("info output lacks %q:\n%s", line, stdout)
		}
	}
	stdout, _, err = runCLI(t, d, "", "info", "--format", "{{.OSType}}/{{.Architecture}} {{.ClientInfo.Context}}")
	if err != nil || stdout != "linux/x86_64 default\n" {
		t.Errorf("info --format: %q, %v", stdout, err)
	}
}
