package registry

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registry/storage"
)

// TestMain lets the crash test run the registry in a child process.
func TestMain(m *testing.M) {
	if root := os.Getenv("BERTH_REGISTRY_TEST_ROOT"); root != "" {
		c := DefaultConfig()
		c.Root, c.Addr = root, "127.0.0.1:0"
		err := Serve(context.Background(), c, slog.New(slog.DiscardHandler), func(addr string) {
			_ = os.WriteFile(filepath.Join(root, "addr"), []byte(addr), 0o644)
		})
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func startChild(t *testing.T, root string) (*exec.Cmd, string) {
	t.Helper()
	_ = os.Remove(filepath.Join(root, "addr"))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BERTH_REGISTRY_TEST_ROOT="+root)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if b, err := os.ReadFile(filepath.Join(root, "addr")); err == nil && len(b) > 0 {
			return cmd, "http://" + string(b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	t.Fatal("registry child did not start")
	return nil, ""
}

// pushImage pushes a layer in chunks, a config, and a tagged manifest.
func pushImage(base, repo string, i int) error {
	layer := bytes.Repeat([]byte(fmt.Sprintf("layer %d ", i)), 20000)
	cfg := []byte(fmt.Sprintf(`{"n":%d}`, i))
	do := func(method, url string, body []byte, hdr ...string) (*http.Response, error) {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		for j := 0; j+1 < len(hdr); j += 2 {
			req.Header.Set(hdr[j], hdr[j+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 300 {
				err = fmt.Errorf("%s %s: %d", method, url, resp.StatusCode)
			}
		}
		return resp, err
	}
	resp, err := do("POST", base+"/v2/"+repo+"/blobs/uploads/", nil)
	if err != nil {
		return err
	}
	loc := base + resp.Header.Get("Location")
	half := len(layer) / 2
	if _, err := do("PATCH", loc, layer[:half], "Content-Range", fmt.Sprintf("0-%d", half-1)); err != nil {
		return err
	}
	if _, err := do("PUT", loc+"?digest="+digest.FromBytes(layer).String(), layer[half:]); err != nil {
		return err
	}
	if _, err := do("POST", base+"/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(cfg).String(), cfg); err != nil {
		return err
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		digest.FromBytes(cfg), len(cfg), digest.FromBytes(layer), len(layer))
	_, err = do("PUT", fmt.Sprintf("%s/v2/%s/manifests/t%d", base, repo, i), []byte(m), "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	return err
}

// checkStore verifies every invariant a crash could break: blobs hash to
// their names, tags and revisions resolve, manifests' blobs are present.
func checkStore(t *testing.T, root string) int {
	t.Helper()
	blobs := 0
	_ = filepath.WalkDir(filepath.Join(root, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		alg := filepath.Base(filepath.Dir(filepath.Dir(p)))
		b, _ := os.ReadFile(p)
		if got := digest.Algorithm(alg).FromBytes(b); got.Encoded() != d.Name() {
			t.Errorf("corrupt blob %s (hashes to %s)", p, got)
		}
		blobs++
		return nil
	})
	s, err := storage.Open(root, nil, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	repos, _ := s.Repositories(ctx)
	for _, repo := range repos {
		tags, _ := s.Tags(ctx, repo)
		for _, tag := range tags {
			_, body, err := s.GetManifest(ctx, repo, tag)
			if err != nil {
				t.Errorf("%s:%s does not resolve: %v", repo, tag, err)
				continue
			}
			var m storage.Manifest
			_ = json.Unmarshal(body, &m)
			for _, d := range append([]storage.Descriptor{*m.Config}, m.Layers...) {
				if _, err := s.StatBlob(ctx, repo, d.Digest); err != nil {
					t.Errorf("%s:%s references missing %s", repo, tag, d.Digest)
				}
			}
		}
	}
	return blobs
}

func TestKill9DuringPushes(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	root := t.TempDir()
	cmd, base := startChild(t, root)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				if pushImage(base, fmt.Sprintf("crash/w%d", w), i) != nil {
					return
				}
			}
		}(w)
	}
	time.Sleep(400 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	wg.Wait()
	if n := checkStore(t, root); n == 0 {
		t.Fatal("nothing was pushed before the kill; the test proved nothing")
	}
	// The restarted registry serves and accepts pushes.
	cmd, base = startChild(t, root)
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := pushImage(base, "crash/after", 1); err != nil {
		t.Fatalf("push after restart: %v", err)
	}
	checkStore(t, root)
}

// writeCert makes a self-signed certificate (also usable as its own CA).
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string, cert tls.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{"localhost"},
		IPAddresses:  nil,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	_ = os.WriteFile(certFile, certPEM, 0o644)
	_ = os.WriteFile(keyFile, keyPEM, 0o600)
	cert, _ = tls.X509KeyPair(certPEM, keyPEM)
	return certFile, keyFile, cert
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	srvCert, srvKey, srvTLS := writeCert(t, dir, "server")
	caFile, _, clientTLS := writeCert(t, dir, "client")
	_, _, strangerTLS := writeCert(t, dir, "stranger")
	c := DefaultConfig()
	c.Root, c.Addr = filepath.Join(dir, "root"), "localhost:0"
	c.TLS.Cert, c.TLS.Key, c.TLS.ClientCA = srvCert, srvKey, caFile
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, c, slog.New(slog.DiscardHandler), func(a string) { addrc <- a })
	}()
	addr := <-addrc
	defer func() { cancel(); <-done }()
	pool := x509.NewCertPool()
	pool.AddCert(srvTLS.Leaf)
	if srvTLS.Leaf == nil {
		leaf, _ := x509.ParseCertificate(srvTLS.Certificate[0])
		pool.AddCert(leaf)
	}
	port := addr[strings.LastIndexByte(addr, ':'):]
	try := func(certs []tls.Certificate) error {
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
		resp, err := cl.Get("https://localhost" + port + "/v2/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	if err := try([]tls.Certificate{clientTLS}); err != nil {
		t.Fatalf("trusted client refused: %v", err)
	}
	if err := try(nil); err == nil {
		t.Fatal("client without a certificate accepted")
	}
	if err := try([]tls.Certificate{strangerTLS}); err == nil {
		t.Fatal("client with an untrusted certificate accepted")
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	_ = os.WriteFile(p, []byte("addr: 0.0.0.0:6000\nroot: /srv/reg\ndelete: true\nuploadTTL: 2h\nauth:\n  token:\n    enabled: true\n  rules:\n    - account: alice\n      repositories: [\"*\"]\n      actions: [pull]\n"), 0o644)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "0.0.0.0:6000" || !c.EnableDelete || time.Duration(c.UploadTTL) != 2*time.Hour || !c.Auth.Token.Enabled || len(c.Auth.Rules) != 1 || c.LogLevel != "info" {
		t.Fatalf("config %+v", c)
	}
	_ = os.WriteFile(p, []byte("adress: typo\n"), 0o644)
	if _, err := LoadConfig(p); err == nil {
		t.Fatal("unknown key accepted")
	}
}

// TestConcurrentPushesWithOnlineGC: 50 distinct images pushed at once
// while GC runs in a loop; all 50 must come out whole.
func TestConcurrentPushesWithOnlineGC(t *testing.T) {
	root := t.TempDir()
	c := DefaultConfig()
	c.Root, c.Addr, c.EnableDelete = root, "127.0.0.1:0", true
	ctx, cancel := context.WithCancel(context.Background())
	addrc, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- Serve(ctx, c, slog.New(slog.DiscardHandler), func(a string) { addrc <- a }) }()
	base := "http://" + <-addrc
	defer func() { cancel(); <-done }()

	gcStore, err := storage.Open(root, nil, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	gcDone := make(chan int)
	go func() {
		runs := 0
		for {
			select {
			case <-stop:
				gcDone <- runs
				return
			default:
			}
			if _, err := gcStore.GC(ctx, storage.GCOptions{Grace: time.Minute}); err != nil {
				t.Error(err)
			}
			runs++
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- pushImage(base, fmt.Sprintf("conc/img%d", i), i)
		}(i)
	}
	wg.Wait()
	close(stop)
	runs := <-gcDone
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if runs == 0 {
		t.Fatal("GC never ran alongside the pushes")
	}
	checkStore(t, root)
	repos, _ := gcStore.Repositories(ctx)
	if len(repos) != 50 {
		t.Fatalf("%d repositories, want 50", len(repos))
	}
	// Untag half, collect without grace: exactly their content goes.
	for i := 0; i < 25; i++ {
		req, _ := http.NewRequest("DELETE", fmt.Sprintf("%s/v2/conc/img%d/manifests/t%d", base, i, i), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("untag: %d", resp.StatusCode)
		}
	}
	res, err := gcStore.GC(ctx, storage.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Manifests) != 25 || len(res.Blobs) != 75 {
		t.Fatalf("GC removed %d manifests and %d blobs, want 25 and 75", len(res.Manifests), len(res.Blobs))
	}
	checkStore(t, root)
}
