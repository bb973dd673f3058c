package registry

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const alpineTarball = "/work/shared/images/alpine/alpine-minirootfs-3.20.3-x86_64.tar.gz"

func findTool(t *testing.T, name string, extra ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range extra {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("%s not installed (apt-get install skopeo; GOBIN=/tmp/regconf/bin go install github.com/google/go-containerregistry/cmd/crane@latest)", name)
	return ""
}

// TestRealClients pushes and pulls with crane and skopeo, both ways.
func TestRealClients(t *testing.T) {
	if testing.Short() {
		t.Skip("client interop skipped in -short mode")
	}
	crane := findTool(t, "crane", "/tmp/regconf/bin/crane")
	skopeo := findTool(t, "skopeo")
	if _, err := os.Stat(alpineTarball); err != nil {
		t.Skipf("test image %s absent", alpineTarball)
	}
	dir := t.TempDir()
	c := DefaultConfig()
	c.Root, c.Addr, c.EnableDelete = filepath.Join(dir, "root"), "127.0.0.1:0", true
	ctx, cancel := context.WithCancel(context.Background())
	addrc, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- Serve(ctx, c, slog.New(slog.DiscardHandler), func(a string) { addrc <- a }) }()
	reg := <-addrc
	defer func() { cancel(); <-done }()

	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dir, "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run(crane, "append", "--insecure", "-f", alpineTarball, "-t", reg+"/library/alpine:3.20")
	digest := run(crane, "digest", "--insecure", reg+"/library/alpine:3.20")
	run(crane, "copy", "--insecure", reg+"/library/alpine:3.20", reg+"/mirror/alpine:3.20")
	if got := run(crane, "digest", "--insecure", reg+"/mirror/alpine:3.20"); got != digest {
		t.Fatalf("copy changed the digest: %s vs %s", got, digest)
	}
	run(crane, "validate", "--insecure", "--remote", reg+"/mirror/alpine:3.20")

	layout := filepath.Join(dir, "layout")
	run(skopeo, "copy", "--src-tls-verify=false", "docker://"+reg+"/library/alpine:3.20", "oci:"+layout+":v1")
	run(skopeo, "copy", "--dest-tls-verify=false", "oci:"+layout+":v1", "docker://"+reg+"/skopeo/alpine:v1")
	run(crane, "validate", "--insecure", "--remote", reg+"/skopeo/alpine:v1")
	if tags := run(crane, "ls", "--insecure", reg+"/skopeo/alpine"); tags != "v1" {
		t.Fatalf("tags %q", tags)
	}
	cat := run(crane, "catalog", "--insecure", reg)
	for _, want := range []string{"library/alpine", "mirror/alpine", "skopeo/alpine"} {
		if !strings.Contains(cat, want) {
			t.Fatalf("catalog %q lacks %s", cat, want)
		}
	}
	run(crane, "delete", "--insecure", reg+"/mirror/alpine@"+digest)
	if out, err := exec.Command(crane, "manifest", "--insecure", reg+"/mirror/alpine:3.20").CombinedOutput(); err == nil {
		t.Fatalf("deleted manifest still served: %s", out)
	}
}
