// Package distribution is berth's registry client: pull and push of images
// between a registry (OCI Distribution API) and the local image store, with
// anonymous, basic and bearer-token authentication.
package distribution

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

// Options configures a Client.
type Options struct {
	// InsecureRegistries are hosts ("host:port", "host") or CIDRs reached
	// over plain HTTP. Loopback registries always are.
	InsecureRegistries []string
	// Mirrors are tried, in order, before Docker Hub for docker.io images.
	Mirrors []string
	// Transport defaults to a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Keychain returns stored credentials for a registry host when a
	// request carries none (config.json); nil means none.
	Keychain func(host string) (AuthConfig, error)
	// Retries is how many times transient failures are retried (default 3).
	Retries int
	Log     *slog.Logger
}

// Client talks to registries. It is safe for concurrent use.
type Client struct {
	opts Options
	http *http.Client

	mu     sync.Mutex
	tokens map[string]cachedToken // realm|service|scope|user -> token
	pushed map[string]pushedBlob  // diffID -> compressed blob made by a push
}

type cachedToken struct {
	token   string
	expires time.Time
}

// New makes a client.
func New(opts Options) *Client {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Retries == 0 {
		opts.Retries = 3
	}
	tr := opts.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		// Blobs are already compressed: never ask for gzip transfer.
		t.DisableCompression = true
		t.ResponseHeaderTimeout = 60 * time.Second
		tr = t
	}
	return &Client{
		opts:   opts,
		http:   &http.Client{Transport: tr},
		tokens: map[string]cachedToken{},
		pushed: map[string]pushedBlob{},
	}
}

// insecure reports whether host is reached over plain HTTP.
func (c *Client) insecure(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	if ip != nil && ip.IsLoopback() {
		return true
	}
	for _, s := range c.opts.InsecureRegistries {
		s = strings.TrimPrefix(strings.TrimPrefix(s, "http://"), "https://")
		if s == host || s == h {
			return true
		}
		if _, n, err := net.ParseCIDR(s); err == nil && ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// endpoint is one registry host serving a repository.
type endpoint struct {
	host   string // as in the reference ("docker.io" is mapped to its API host)
	base   string // scheme://apihost
	mirror bool
}

func (c *Client) endpoints(host string) []endpoint {
	var out []endpoint
	if host == "docker.io" {
		for _, m := range c.opts.Mirrors {
			u, err := url.Parse(m)
			if err != nil || u.Host == "" {
				continue
			}
			out = append(out, endpoint{host: u.Host, base: u.Scheme + "://" + u.Host, mirror: true})
		}
		return append(out, endpoint{host: host, base: "https://registry-1.docker.io"})
	}
	scheme := "https"
	if c.insecure(host) {
		scheme = "http"
	}
	return append(out, endpoint{host: host, base: scheme + "://" + host})
}

// session is an authenticated conversation with one repository.
type session struct {
	c     *Client
	ep    endpoint
	repo  string // path in the registry, e.g. "library/busybox"
	auth  AuthConfig
	scope []string // token scopes: "repository:x:pull"

	mu     sync.Mutex
	header string // the Authorization header that worked
}

func (c *Client) newSession(ep endpoint, repo string, auth AuthConfig, actions string, extra ...string) *session {
	if auth.Empty() && c.opts.Keychain != nil && !ep.mirror {
		if a, err := c.opts.Keychain(ep.host); err == nil {
			auth = a
		}
	}
	scope := []string{"repository:" + repo + ":" + actions}
	for _, r := range extra {
		scope = append(scope, "repository:"+r+":pull")
	}
	return &session{c: c, ep: ep, repo: repo, auth: auth, scope: scope}
}

// RegistryError is an error answer from a registry.
type RegistryError struct {
	Status int
	Code   string
	Msg    string
}

func (e *RegistryError) Error() string {
	if e.Code != "" {
		return strings.ToLower(strings.ReplaceAll(e.Code, "_", " ")) + ": " + e.Msg
	}
	return fmt.Sprintf("registry answered %d %s", e.Status, http.StatusText(e.Status))
}

func registryError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	e := &RegistryError{Status: resp.StatusCode}
	if json.Unmarshal(body, &env) == nil && len(env.Errors) > 0 {
		e.Code, e.Msg = env.Errors[0].Code, env.Errors[0].Message
	}
	var err error = e
	switch resp.StatusCode {
	case http.StatusNotFound:
		err = errdefs.NotFound(e)
	case http.StatusUnauthorized, http.StatusForbidden:
		err = errdefs.Unauthorized(e)
	}
	return err
}

// request is a replayable request: body() gives a fresh body each attempt.
type request struct {
	method string
	url    string // absolute or a path under /v2/
	header http.Header
	body   func() (io.ReadCloser, error)
	// length is the body's size when known (else chunked).
	length int64
	// retry allows retrying transient failures (idempotent requests,
	// replayable bodies).
	retry bool
}

// do sends req, answering auth challenges and retrying transient errors.
func (s *session) do(ctx context.Context, req request) (*http.Response, error) {
	u := req.url
	if strings.HasPrefix(u, "/") {
		u = s.ep.base + u
	}
	attempts := 1
	if req.retry {
		attempts = s.c.opts.Retries + 1
	}
	var lastErr error
	authTried := false
	for i := 0; i < attempts; i++ {
		if i > 0 {
			delay := time.Duration(100<<uint(i-1)) * time.Millisecond
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(delay):
			}
		}
		resp, err := s.send(ctx, req, u)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = err
			continue
		}
		if resp.StatusCode == http.StatusUnauthorized && !authTried {
			authTried = true
			chal := resp.Header.Get("WWW-Authenticate")
			resp.Body.Close()
			if err := s.authenticate(ctx, chal); err != nil {
				return nil, err
			}
			i-- // the challenge does not count as a failure
			continue
		}
		if req.retry && (resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests) && i < attempts-1 {
			lastErr = registryError(resp)
			resp.Body.Close()
			continue
		}
		return resp, nil
	}
	return nil, lastErr
}

func (s *session) send(ctx context.Context, req request, u string) (*http.Response, error) {
	var body io.ReadCloser
	if req.body != nil {
		var err error
		if body, err = req.body(); err != nil {
			return nil, err
		}
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	if req.length > 0 {
		hr.ContentLength = req.length
	}
	if hr.Header.Get("User-Agent") == "" {
		hr.Header.Set("User-Agent", "berth")
	}
	s.mu.Lock()
	if s.header != "" {
		hr.Header.Set("Authorization", s.header)
	}
	s.mu.Unlock()
	return s.c.http.Do(hr)
}

// authenticate answers a WWW-Authenticate challenge.
func (s *session) authenticate(ctx context.Context, challenge string) error {
	scheme, params := parseChallenge(challenge)
	user, pass := s.auth.userPass()
	switch strings.ToLower(scheme) {
	case "basic":
		if user == "" && pass == "" {
			return errdefs.Unauthorized(fmt.Errorf("%s: authentication required", s.ep.host))
		}
		hr, _ := http.NewRequest("GET", "/", nil)
		hr.SetBasicAuth(user, pass)
		s.mu.Lock()
		s.header = hr.Header.Get("Authorization")
		s.mu.Unlock()
		return nil
	case "bearer":
		if s.auth.RegistryToken != "" {
			s.mu.Lock()
			s.header = "Bearer " + s.auth.RegistryToken
			s.mu.Unlock()
			return nil
		}
		tok, err := s.c.token(ctx, params, s.scope, s.auth)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.header = "Bearer " + tok
		s.mu.Unlock()
		return nil
	}
	return errdefs.Unauthorized(fmt.Errorf("%s: unsupported authentication challenge %q", s.ep.host, challenge))
}

// token fetches (or reuses) a bearer token for scopes from the realm.
func (c *Client) token(ctx context.Context, params map[string]string, scopes []string, auth AuthConfig) (string, error) {
	realm := params["realm"]
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return "", errdefs.Unauthorized(fmt.Errorf("invalid token realm %q", realm))
	}
	user, pass := auth.userPass()
	key := strings.Join([]string{realm, params["service"], strings.Join(scopes, " "), user, pass, auth.IdentityToken}, "|")
	c.mu.Lock()
	if t, ok := c.tokens[key]; ok && time.Now().Before(t.expires) {
		c.mu.Unlock()
		return t.token, nil
	}
	c.mu.Unlock()
	q := u.Query()
	if svc := params["service"]; svc != "" {
		q.Set("service", svc)
	}
	for _, sc := range scopes {
		q.Add("scope", sc)
	}
	var hr *http.Request
	if auth.IdentityToken != "" {
		// OAuth2 refresh-token grant, as docker does with identity tokens.
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {auth.IdentityToken}, "service": {params["service"]}, "client_id": {"berth"}, "scope": {strings.Join(scopes, " ")}}
		hr, _ = http.NewRequestWithContext(ctx, "POST", u.String(), strings.NewReader(form.Encode()))
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		if user != "" {
			q.Set("account", user)
		}
		u.RawQuery = q.Encode()
		hr, _ = http.NewRequestWithContext(ctx, "GET", u.String(), nil)
		if user != "" || pass != "" {
			hr.SetBasicAuth(user, pass)
		}
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return "", fmt.Errorf("fetch token from %s: %w", realm, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := registryError(resp)
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return "", errdefs.Unauthorized(fmt.Errorf("get token: %w", err))
		}
		return "", fmt.Errorf("get token from %s: %w", realm, err)
	}
	var tr struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil {
		return "", fmt.Errorf("token from %s: %w", realm, err)
	}
	tok := tr.Token
	if tok == "" {
		tok = tr.AccessToken
	}
	if tok == "" {
		return "", errdefs.Unauthorized(fmt.Errorf("token server %s returned no token", realm))
	}
	exp := time.Duration(tr.ExpiresIn) * time.Second
	if exp < time.Minute {
		exp = time.Minute
	}
	c.mu.Lock()
	c.tokens[key] = cachedToken{token: tok, expires: time.Now().Add(exp - 10*time.Second)}
	c.mu.Unlock()
	return tok, nil
}

// parseChallenge splits `Bearer realm="x",service="y",scope="z"`.
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,")
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimLeft(v, " ")
		if strings.HasPrefix(v, `"`) {
			end := 1
			for end < len(v) && v[end] != '"' {
				if v[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(v) {
				params[k] = strings.ReplaceAll(v[1:], `\"`, `"`)
				break
			}
			params[k] = strings.ReplaceAll(v[1:end], `\"`, `"`)
			rest = v[end+1:]
		} else {
			val, r, _ := strings.Cut(v, ",")
			params[k] = strings.TrimSpace(val)
			rest = r
		}
	}
	return scheme, params
}

// Login checks a credential against a registry (GET /v2/ with the
// challenge answered) and returns the identity token a token server gave
// back, if any.
func (c *Client) Login(ctx context.Context, auth AuthConfig) (string, error) {
	host := normalizeHost(auth.ServerAddress)
	eps := c.endpoints(host)
	ep := eps[len(eps)-1]
	s := &session{c: c, ep: ep, auth: auth}
	resp, err := s.do(ctx, request{method: "GET", url: "/v2/", retry: true})
	if err != nil {
		return "", fmt.Errorf("login to %s: %w", host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return "", errdefs.Unauthorized(fmt.Errorf("login to %s: unauthorized: incorrect username or password", host))
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login to %s: %w", host, registryError(resp))
	}
	return "", nil
}

var errNoEndpoint = errors.New("no registry endpoint")
