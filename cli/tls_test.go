package cli

import (
	"bytes"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTLSConnection(t *testing.T) {
	d := newFakeDaemon(t)
	d.list = "[]"
	srv := httptest.NewUnstartedServer(http.HandlerFunc(d.serve))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := "tcp://" + srv.Listener.Addr().String()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		env := &Env{In: strings.NewReader(""), Out: &out, Err: &errb, Version: "test", Getenv: func(string) string { return "" }}
		root := newRoot(env)
		root.SetArgs(append([]string{"-H", host}, args...))
		err := root.Execute()
		return out.String(), err
	}
	for _, tc := range []struct {
		name   string
		flags  []string
		wantOK bool
	}{
		{"tls without verification", []string{"--tls"}, true},
		{"tlsverify with the server's CA", []string{"--tlsverify", "--tlscacert", caFile}, true},
		{"plain http to a TLS server", nil, false},
		{"tlsverify against an unknown CA", []string{"--tlsverify", "--tlscacert", "/nonexistent/ca.pem"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(append(tc.flags, "ps", "-q")...)
			if tc.wantOK && (err != nil || out != "") {
				t.Errorf("ps over TLS: %q, %v", out, err)
			}
			if !tc.wantOK && err == nil {
				t.Error("succeeded without TLS")
			}
		})
	}
}
