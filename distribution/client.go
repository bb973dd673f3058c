package distribution

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

// Options configure a Client.
type Options struct {
	// InsecureRegistries are hosts ("host:port", "host") or CIDRs
	// ("10.0.0.0/8") reached without TLS verification, over plain HTTP when
	// they do not speak TLS. Loopback registries always are.
	InsecureRegistries []string
	// Mirrors are base URLs ("https://mirror.example") tried before Docker
	// Hub for docker.io images.
	Mirrors []string
	// Transport is the base HTTP transport (nil: a tuned default).
	Transport http.RoundTripper
	// UserAgent is sent with every request.
	UserAgent string
	// Attempts bounds tries per request on transient errors (default 4).
	Attempts int
	Log      *slog.Logger
}

// Client talks to registries. It is safe for concurrent use and caches
// bearer tokens and the scheme each registry speaks.
type Client struct {
	opts         Options
	log          *slog.Logger
	insecureNets []*net.IPNet
	insecure     map[string]bool
	secure       *http.Client
	lax          *http.Client // for insecure registries: no TLS verification

	schemes sync.Map // host -> "https" | "http"
	tokens  sync.Map // tokenKey -> token
}

// New returns a Client.
func New(opts Options) (*Client, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 4
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "berth"
	}
	c := &Client{opts: opts, log: opts.Log, insecure: map[string]bool{}}
	for _, s := range opts.InsecureRegistries {
		s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(s, "http://"), "https://"), "/")
		if _, n, err := net.ParseCIDR(s); err == nil {
			c.insecureNets = append(c.insecureNets, n)
			continue
		}
		c.insecure[s] = true
	}
	for _, m := range opts.Mirrors {
		u, err := url.Parse(m)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, errdefs.InvalidParameterf("invalid registry mirror %q: want http(s)://host[:port]", m)
		}
	}
	base := opts.Transport
	if base == nil {
		base = defaultTransport(false)
	}
	c.secure = &http.Client{Transport: base}
	if opts.Transport != nil {
		c.lax = c.secure
	} else {
		c.lax = &http.Client{Transport: defaultTransport(true)}
	}
	return c, nil
}

func defaultTransport(skipVerify bool) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	t.ResponseHeaderTimeout = 60 * time.Second
	t.ReadBufferSize = 256 << 10
	t.WriteBufferSize = 256 << 10
	t.DisableCompression = true // layers are compressed already; ranges must stay exact
	if skipVerify {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // --insecure-registry
	}
	return t
}

// isInsecure reports whether host is loopback or listed as insecure.
func (c *Client) isInsecure(host string) bool {
	if c.insecure[host] {
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if c.insecure[h] || h == "localhost" {
		return true
	}
	ips := []net.IP{net.ParseIP(h)}
	if ips[0] == nil {
		if len(c.insecureNets) == 0 {
			return false
		}
		addrs, err := net.LookupIP(h)
		if err != nil {
			return false
		}
		ips = addrs
	}
	for _, ip := range ips {
		if ip.IsLoopback() {
			return true
		}
		for _, n := range c.insecureNets {
			if n.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// scheme decides https or http for host: https always for secure hosts;
// insecure ones are probed once (https without verification, else http).
func (c *Client) scheme(ctx context.Context, host string) string {
	if v, ok := c.schemes.Load(host); ok {
		return v.(string)
	}
	if !c.isInsecure(host) {
		return "https"
	}
	s := "http"
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/v2/", nil)
	probe, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if resp, err := c.lax.Do(req.WithContext(probe)); err == nil {
		resp.Body.Close()
		s = "https"
	}
	c.schemes.Store(host, s)
	return s
}

func (c *Client) httpClient(host string) *http.Client {
	if c.isInsecure(host) {
		return c.lax
	}
	return c.secure
}

// endpoint is one registry API base: scheme://host.
type endpoint struct {
	scheme, host string
}

// repository is one repository on one registry endpoint, with its auth state.
type repository struct {
	c     *Client
	ep    endpoint
	path  string
	creds Credentials
	push  bool

	mu    sync.Mutex
	authz string // Authorization header value once known
}

func (c *Client) repository(ctx context.Context, host, path string, creds Credentials, push bool) *repository {
	return &repository{c: c, ep: endpoint{scheme: c.scheme(ctx, host), host: host}, path: path, creds: creds, push: push}
}

func (c *Client) mirrorRepository(m, path string, creds Credentials) *repository {
	u, _ := url.Parse(m)
	return &repository{c: c, ep: endpoint{scheme: u.Scheme, host: u.Host}, path: path}
}

func (r *repository) url(p string) string {
	return r.ep.scheme + "://" + r.ep.host + "/v2/" + r.path + p
}

func (r *repository) scope() string {
	if r.push {
		return "repository:" + r.path + ":pull,push"
	}
	return "repository:" + r.path + ":pull"
}

// request describes one registry call. body, when set, is re-opened on
// every attempt; stream bodies (which cannot be re-sent) use bodyOnce.
type request struct {
	method   string
	url      string
	header   http.Header
	body     func() io.Reader
	bodyOnce io.Reader
	length   int64
}

// RegistryError is a failure answered by a registry.
type RegistryError struct {
	Status  int
	Code    string
	Message string
	URL     string
}

func (e *RegistryError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s: %s", strings.ToLower(strings.ReplaceAll(e.Code, "_", " ")), e.Message)
	}
	return fmt.Sprintf("unexpected status from %s request to %s: %d %s", "registry", e.URL, e.Status, http.StatusText(e.Status))
}

func classify(err *RegistryError) error {
	switch err.Status {
	case http.StatusNotFound:
		return errdefs.NotFound(err)
	case http.StatusUnauthorized:
		return errdefs.Unauthorized(err)
	case http.StatusForbidden:
		return errdefs.Forbidden(err)
	case http.StatusBadRequest:
		return errdefs.InvalidParameter(err)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return errdefs.Unavailable(err)
	}
	return err
}

// responseError builds the error for a non-2xx answer.
func responseError(resp *http.Response) error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &RegistryError{Status: resp.StatusCode, URL: resp.Request.URL.Redacted()}
	var body struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &body) == nil && len(body.Errors) > 0 {
		e.Code, e.Message = body.Errors[0].Code, body.Errors[0].Message
	}
	return classify(e)
}

func transient(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusBadGateway ||
		status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout ||
		status == http.StatusInternalServerError
}

// backoff sleeps before attempt n (1-based retries): 200ms, 400ms, 800ms... with jitter.
func backoff(ctx context.Context, n int) error {
	d := time.Duration(100<<n) * time.Millisecond
	d += time.Duration(rand.Int64N(int64(d / 4)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// do sends req, authenticating on a 401 challenge and retrying transient
// failures. Non-2xx answers (other than those in ok) become errors.
func (r *repository) do(ctx context.Context, req request, ok ...int) (*http.Response, error) {
	authed := false
	for attempt := 1; ; attempt++ {
		var body io.Reader
		switch {
		case req.body != nil:
			body = req.body()
		case req.bodyOnce != nil:
			body = req.bodyOnce
		}
		hr, err := http.NewRequestWithContext(ctx, req.method, req.url, body)
		if err != nil {
			return nil, err
		}
		for k, v := range req.header {
			hr.Header[k] = v
		}
		if req.length > 0 {
			hr.ContentLength = req.length
		}
		hr.Header.Set("User-Agent", r.c.opts.UserAgent)
		r.mu.Lock()
		if r.authz != "" {
			hr.Header.Set("Authorization", r.authz)
		}
		r.mu.Unlock()
		resp, err := r.c.httpClient(r.ep.host).Do(hr)
		retriable := req.bodyOnce == nil && attempt < r.c.opts.Attempts
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if retriable {
				r.c.log.Debug("registry request failed, retrying", "url", req.url, "err", err)
				if berr := backoff(ctx, attempt); berr != nil {
					return nil, berr
				}
				continue
			}
			return nil, errdefs.Unavailable(fmt.Errorf("%s %s: %w", req.method, redact(req.url), err))
		}
		if resp.StatusCode == http.StatusUnauthorized && !authed && req.bodyOnce == nil {
			ch := resp.Header.Values("WWW-Authenticate")
			resp.Body.Close()
			if err := r.authenticate(ctx, ch); err != nil {
				return nil, err
			}
			authed = true
			attempt--
			continue
		}
		if transient(resp.StatusCode) && retriable {
			resp.Body.Close()
			if berr := backoff(ctx, attempt); berr != nil {
				return nil, berr
			}
			continue
		}
		if resp.StatusCode/100 == 2 || contains(ok, resp.StatusCode) {
			return resp, nil
		}
		return nil, responseError(resp)
	}
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func redact(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Redacted()
	}
	return u
}

// ensureAuth makes sure the repository holds an authorization before a
// request whose body cannot be re-sent: it pings /v2/ and answers its challenge.
func (r *repository) ensureAuth(ctx context.Context) error {
	r.mu.Lock()
	have := r.authz != ""
	r.mu.Unlock()
	if have {
		return nil
	}
	resp, err := r.do(ctx, request{method: http.MethodGet, url: r.ep.scheme + "://" + r.ep.host + "/v2/"}, http.StatusNotFound)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// authenticate answers a WWW-Authenticate challenge.
func (r *repository) authenticate(ctx context.Context, challenges []string) error {
	for _, h := range challenges {
		scheme, params := parseChallenge(h)
		switch scheme {
		case "basic":
			if r.creds.Username == "" && r.creds.Password == "" {
				return errdefs.Unauthorized(fmt.Errorf("%s: authentication required", r.ep.host))
			}
			req, _ := http.NewRequest(http.MethodGet, "/", nil)
			req.SetBasicAuth(r.creds.Username, r.creds.Password)
			r.setAuthz(req.Header.Get("Authorization"))
			return nil
		case "bearer":
			tok, err := r.token(ctx, params)
			if err != nil {
				return err
			}
			r.setAuthz("Bearer " + tok)
			return nil
		}
	}
	return errdefs.Unauthorized(fmt.Errorf("%s: authentication required (no supported challenge in %q)", r.ep.host, challenges))
}

func (r *repository) setAuthz(v string) {
	r.mu.Lock()
	r.authz = v
	r.mu.Unlock()
}

// token obtains (or reuses) a bearer token for the repository's scope.
func (r *repository) token(ctx context.Context, params map[string]string) (string, error) {
	if r.creds.RegistryToken != "" {
		return r.creds.RegistryToken, nil
	}
	realm := params["realm"]
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return "", errdefs.Unauthorized(fmt.Errorf("%s: invalid token realm %q", r.ep.host, realm))
	}
	scope := r.scope()
	if s := params["scope"]; s != "" && !strings.Contains(s, r.path) {
		scope = s
	}
	key := realm + "|" + params["service"] + "|" + scope + "|" + r.creds.Username + "|" + r.creds.IdentityToken
	if v, ok := r.c.tokens.Load(key); ok {
		t := v.(cachedToken)
		if time.Now().Before(t.expires) {
			return t.token, nil
		}
	}
	var resp *http.Response
	if r.creds.IdentityToken != "" {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.creds.IdentityToken}, "service": {params["service"]}, "scope": {scope}, "client_id": {"berth"}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, realm, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err = r.c.httpClient(u.Host).Do(req)
	} else {
		q := u.Query()
		if s := params["service"]; s != "" {
			q.Set("service", s)
		}
		q.Set("scope", scope)
		u.RawQuery = q.Encode()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if r.creds.Username != "" || r.creds.Password != "" {
			req.SetBasicAuth(r.creds.Username, r.creds.Password)
		}
		req.Header.Set("User-Agent", r.c.opts.UserAgent)
		resp, err = r.c.httpClient(u.Host).Do(req)
	}
	if err != nil {
		return "", errdefs.Unavailable(fmt.Errorf("token from %s: %w", redact(realm), err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		e := fmt.Errorf("token from %s: %s: %s", redact(realm), resp.Status, strings.TrimSpace(string(b)))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return "", errdefs.Unauthorized(e)
		}
		return "", e
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("token from %s: %w", redact(realm), err)
	}
	tok := body.Token
	if tok == "" {
		tok = body.AccessToken
	}
	if tok == "" {
		return "", errdefs.Unauthorized(fmt.Errorf("token from %s: empty token", redact(realm)))
	}
	exp := body.ExpiresIn
	if exp < 60 {
		exp = 60
	}
	r.c.tokens.Store(key, cachedToken{token: tok, expires: time.Now().Add(time.Duration(exp-10) * time.Second)})
	return tok, nil
}

type cachedToken struct {
	token   string
	expires time.Time
}

// parseChallenge parses `Bearer realm="x",service="y",scope="a,b"`.
func parseChallenge(h string) (scheme string, params map[string]string) {
	params = map[string]string{}
	h = strings.TrimSpace(h)
	sp := strings.IndexByte(h, ' ')
	if sp < 0 {
		return strings.ToLower(h), params
	}
	scheme, rest := strings.ToLower(h[:sp]), h[sp+1:]
	for len(rest) > 0 {
		rest = strings.TrimLeft(rest, " ,")
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			break
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = rest[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest); i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
					b.WriteByte(rest[i])
					continue
				}
				if rest[i] == '"' {
					break
				}
				b.WriteByte(rest[i])
			}
			val = b.String()
			if i < len(rest) {
				i++
			}
			rest = rest[i:]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val = strings.TrimSpace(rest[:end])
			rest = rest[end:]
		}
		params[key] = val
	}
	return scheme, params
}

// Login checks creds against the registry at domain and returns an
// identity token when the registry hands one out.
func (c *Client) Login(ctx context.Context, domain string, creds Credentials) (string, error) {
	host := apiHost(strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(domain, "https://"), "http://"), "/"))
	if h, _, ok := strings.Cut(host, "/"); ok {
		host = h
	}
	r := &repository{c: c, ep: endpoint{scheme: c.scheme(ctx, host), host: host}, creds: creds}
	url := r.ep.scheme + "://" + host + "/v2/"
	resp, err := c.httpClient(host).Get(url)
	if err != nil {
		return "", errdefs.Unavailable(fmt.Errorf("login to %s: %w", host, err))
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return "", nil
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return "", fmt.Errorf("login attempt to %s failed with status: %d %s", url, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		scheme, params := parseChallenge(h)
		switch scheme {
		case "basic":
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			req.SetBasicAuth(creds.Username, creds.Password)
			resp, err := c.httpClient(host).Do(req)
			if err != nil {
				return "", errdefs.Unavailable(fmt.Errorf("login to %s: %w", host, err))
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return "", errdefs.Unauthorized(fmt.Errorf("login attempt to %s failed with status: %d %s", url, resp.StatusCode, http.StatusText(resp.StatusCode)))
			}
			return "", nil
		case "bearer":
			r.path = ""
			if _, err := r.tokenNoScope(ctx, params); err != nil {
				return "", err
			}
			return "", nil
		}
	}
	return "", errdefs.Unauthorized(fmt.Errorf("login attempt to %s failed: no supported authentication challenge", url))
}

// tokenNoScope fetches a token without a repository scope: a login check.
func (r *repository) tokenNoScope(ctx context.Context, params map[string]string) (string, error) {
	u, err := url.Parse(params["realm"])
	if err != nil || u.Host == "" {
		return "", errdefs.Unauthorized(fmt.Errorf("invalid token realm %q", params["realm"]))
	}
	q := u.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	u.RawQuery = q.Encode()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	req.SetBasicAuth(r.creds.Username, r.creds.Password)
	resp, err := r.c.httpClient(u.Host).Do(req)
	if err != nil {
		return "", errdefs.Unavailable(fmt.Errorf("login: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", errdefs.Unauthorized(fmt.Errorf("login attempt to %s://%s/v2/ failed with status: %d %s", r.ep.scheme, r.ep.host, resp.StatusCode, http.StatusText(resp.StatusCode)))
	}
	return "", nil
}

var errDigestMismatch = errors.New("digest mismatch")
