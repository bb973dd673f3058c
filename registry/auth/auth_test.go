package auth_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-dev/berth/registry/api"
	"github.com/berth-dev/berth/registry/auth"
	"github.com/berth-dev/berth/registry/storage"
)

func users(t *testing.T) *auth.Htpasswd {
	t.Helper()
	var b strings.Builder
	for _, u := range []string{"alice", "bob"} {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(u + ":" + string(h) + "\n")
	}
	h, err := auth.ParseHtpasswd([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func server(t *testing.T, opts api.Options) *httptest.Server {
	t.Helper()
	st, err := storage.Open(t.TempDir(), nil, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(st, opts))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url, user, pass, bearer string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

var policy = auth.Policy{Rules: []auth.Rule{
	{Account: "alice", Repos: []string{"*"}, Actions: []string{"*"}},
	{Account: "bob", Repos: []string{"bob/*"}, Actions: []string{"pull", "push"}},
	{Account: "*", Repos: []string{"public"}, Actions: []string{"pull"}},
}}

func TestHtpasswdRejectsWeakHashes(t *testing.T) {
	if _, err := auth.ParseHtpasswd([]byte("u:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")); err == nil {
		t.Fatal("SHA1 htpasswd entry accepted")
	}
}

func TestBasic(t *testing.T) {
	srv := server(t, api.Options{Authorizer: &auth.Basic{Users: users(t), Policy: policy}})
	cases := []struct {
		name, path, user, pass string
		status                 int
	}{
		{"ping anonymous", "/v2/", "", "", 401},
		{"ping alice", "/v2/", "alice", "alice-pw", 200},
		{"wrong password", "/v2/", "alice", "nope", 401},
		{"unknown user", "/v2/", "mallory", "x", 401},
		{"alice anywhere", "/v2/x/tags/list", "alice", "alice-pw", 404},
		{"bob own repo", "/v2/bob/app/tags/list", "bob", "bob-pw", 404},
		{"bob elsewhere", "/v2/alice/app/tags/list", "bob", "bob-pw", 403},
		{"bob public", "/v2/public/tags/list", "bob", "bob-pw", 404},
		{"anonymous repo", "/v2/public/tags/list", "", "", 401},
		{"bob catalog", "/v2/_catalog", "bob", "bob-pw", 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := get(t, srv.URL+c.path, c.user, c.pass, "")
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if c.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Fatalf("challenge %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func token(t *testing.T, realm, service, scope, user, pass string) (string, int) {
	t.Helper()
	req, _ := http.NewRequest("GET", realm+"?service="+service+"&scope="+scope, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Token string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body.Token, resp.StatusCode
}

func TestTokenFlow(t *testing.T) {
	now := time.Now()
	tk := &auth.Token{Path: "/token", Service: "reg", Key: []byte(strings.Repeat("k", 32)), Expiry: time.Minute,
		Users: users(t), Policy: policy, Now: func() time.Time { return now }}
	srv := server(t, api.Options{Authorizer: tk, TokenHandler: tk, TokenPath: "/token"})

	// 1. Anonymous request: challenge pointing at our token endpoint.
	resp := get(t, srv.URL+"/v2/bob/app/tags/list", "", "", "")
	ch := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != 401 || !strings.Contains(ch, `realm="`+srv.URL+`/token"`) || !strings.Contains(ch, `scope="repository:bob/app:pull"`) {
		t.Fatalf("challenge %d %q", resp.StatusCode, ch)
	}
	// 2. Token endpoint wants credentials.
	if _, st := token(t, srv.URL+"/token", "reg", "repository:bob/app:pull", "bob", "bad"); st != 401 {
		t.Fatalf("bad password got %d", st)
	}
	tok, st := token(t, srv.URL+"/token", "reg", "repository:bob/app:pull,push", "bob", "bob-pw")
	if st != 200 || tok == "" {
		t.Fatalf("token status %d", st)
	}
	// 3. The token opens what it grants, and nothing else.
	if resp := get(t, srv.URL+"/v2/bob/app/tags/list", "", "", tok); resp.StatusCode != 404 {
		t.Fatalf("with token: %d", resp.StatusCode)
	}
	resp = get(t, srv.URL+"/v2/bob/other/tags/list", "", "", tok)
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("other repo with token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// Bob asking for alice's repository gets a token without that grant.
	tok2, _ := token(t, srv.URL+"/token", "reg", "repository:alice/x:pull", "bob", "bob-pw")
	if resp := get(t, srv.URL+"/v2/alice/x/tags/list", "", "", tok2); resp.StatusCode != 401 {
		t.Fatalf("bob on alice's repo: %d", resp.StatusCode)
	}
	// A tampered or expired token is refused.
	if resp := get(t, srv.URL+"/v2/bob/app/tags/list", "", "", tok[:len(tok)-2]+"xx"); resp.StatusCode != 401 {
		t.Fatalf("tampered token: %d", resp.StatusCode)
	}
	now = now.Add(2 * time.Minute)
	if resp := get(t, srv.URL+"/v2/bob/app/tags/list", "", "", tok); resp.StatusCode != 401 {
		t.Fatalf("expired token: %d", resp.StatusCode)
	}
}

func TestScopeRoundTrip(t *testing.T) {
	need := []auth.Access{{"repository", "a/b", "pull"}, {"repository", "a/b", "push"}, {"repository", "c", "pull"}}
	s := auth.ScopeString(need)
	if s != "repository:a/b:pull,push repository:c:pull" {
		t.Fatalf("scope %q", s)
	}
	got, ok := auth.ParseScope("repository:localhost:5000/a:pull,push")
	if !ok || len(got) != 2 || got[0].Name != "localhost:5000/a" {
		t.Fatalf("parse %+v", got)
	}
}

func TestMountWithoutSourceRespectsPolicy(t *testing.T) {
	srv := server(t, api.Options{Authorizer: &auth.Basic{Users: users(t), Policy: policy}})
	do := func(method, path, user string, body string) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.SetBasicAuth(user, user+"-pw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	secret := "alice's secret layer"
	d := "sha256:" + sha256hex(secret)
	if resp := do("POST", "/v2/alice/private/blobs/uploads/?digest="+d, "alice", secret); resp.StatusCode != 201 {
		t.Fatalf("alice push: %d", resp.StatusCode)
	}
	// Bob knows the digest but cannot read alice's repository: no mount.
	if resp := do("POST", "/v2/bob/app/blobs/uploads/?mount="+d, "bob", ""); resp.StatusCode != 202 {
		t.Fatalf("bob mounted content he cannot read: %d", resp.StatusCode)
	}
	if resp := do("HEAD", "/v2/bob/app/blobs/"+d, "bob", ""); resp.StatusCode != 404 {
		t.Fatalf("bob sees the blob: %d", resp.StatusCode)
	}
	// Alice can: the automatic mount works for her.
	if resp := do("POST", "/v2/alice/copy/blobs/uploads/?mount="+d, "alice", ""); resp.StatusCode != 201 {
		t.Fatalf("alice automatic mount: %d", resp.StatusCode)
	}
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
