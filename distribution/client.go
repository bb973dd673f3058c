// Package distribution pulls images from and pushes them to registries
// that speak the OCI distribution API: authentication (anonymous, basic,
// bearer tokens from WWW-Authenticate challenges), manifests and indexes,
// blobs verified against their digests, and streaming into the image store
// (download, verification and unpacking of layers run together, layers in
// parallel).
package distribution

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
)

// Options configure a Client.
type Options struct {
	// Insecure lists registries (host[:port]) reached over plain HTTP;
	// loopback registries always are.
	Insecure []string
	// Mirrors are tried before Docker Hub for its images.
	Mirrors []string
	// Transport overrides the HTTP transport (tests).
	Transport http.RoundTripper
	// Keychain gives stored credentials for a registry host when the
	// client has none (the daemon user's ~/.docker/config.json).
	Keychain func(host string) registry.AuthConfig
}

// Client talks to registries on behalf of one user (one set of credentials).
type Client struct {
	opts Options
	http *http.Client
	auth registry.AuthConfig

	mu     sync.Mutex
	tokens map[string]string // "host scope" -> bearer token
}

// NewClient returns a client using auth (zero for anonymous).
func NewClient(opts Options, auth registry.AuthConfig) *Client {
	tr := opts.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 8,
			ForceAttemptHTTP2:   true,
		}
	}
	return &Client{opts: opts, http: &http.Client{Transport: tr}, auth: auth, tokens: map[string]string{}}
}

// DecodeAuthHeader decodes the X-Registry-Auth header the docker CLI sends
// (base64url JSON of an AuthConfig). An empty header is anonymous.
func DecodeAuthHeader(h string) (registry.AuthConfig, error) {
	var ac registry.AuthConfig
	if h == "" {
		return ac, nil
	}
	data, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		data, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(h, "="))
	}
	if err != nil {
		return ac, errdefs.InvalidParameterf("invalid X-Registry-Auth header: %v", err)
	}
	if err := json.Unmarshal(data, &ac); err != nil {
		return ac, errdefs.InvalidParameterf("invalid X-Registry-Auth header: %v", err)
	}
	if ac.Auth != "" && ac.Username == "" {
		if raw, err := base64.StdEncoding.DecodeString(ac.Auth); err == nil {
			ac.Username, ac.Password, _ = strings.Cut(string(raw), ":")
		}
	}
	return ac, nil
}

// Repository is one repository of one registry.
type Repository struct {
	c      *Client
	auth   registry.AuthConfig
	host   string // as in the reference; docker.io for Docker Hub
	name   string // path, e.g. library/busybox
	scheme string
	base   string // scheme://endpoint-host
}

// Repository returns the repository of a normalised reference.
func (c *Client) Repository(named reference.Named) *Repository {
	host := reference.Domain(named)
	endpoint := host
	if host == "docker.io" {
		endpoint = "registry-1.docker.io"
		if len(c.opts.Mirrors) > 0 {
			if u, err := url.Parse(c.opts.Mirrors[0]); err == nil && u.Host != "" {
				endpoint = u.Host
			}
		}
	}
	scheme := "https"
	if c.insecure(endpoint) {
		scheme = "http"
	}
	auth := c.auth
	if auth == (registry.AuthConfig{}) && c.opts.Keychain != nil {
		auth = c.opts.Keychain(host)
	}
	return &Repository{c: c, auth: auth, host: host, name: reference.Path(named), scheme: scheme, base: scheme + "://" + endpoint}
}

// insecure tells whether host is reached over plain HTTP: loopback and
// the configured insecure registries.
func (c *Client) insecure(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, i := range c.opts.Insecure {
		if i == host || i == h {
			return true
		}
		if _, cidr, err := net.ParseCIDR(i); err == nil {
			if ip := net.ParseIP(h); ip != nil && cidr.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// Ping checks that the registry answers and that the credentials work
// (POST /auth, `docker login`).
func (c *Client) Ping(ctx context.Context, server string) error {
	if server == "" || strings.Contains(server, "index.docker.io") {
		server = "docker.io"
	}
	server = strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	server = strings.TrimSuffix(strings.TrimSuffix(server, "/"), "/v1")
	named, err := reference.ParseNormalizedNamed(server + "/x")
	if err != nil {
		return errdefs.InvalidParameterf("invalid registry %q: %v", server, err)
	}
	r := c.Repository(named)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := r.do(req, "")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return errdefs.Unauthorized(fmt.Errorf("login to %s: unauthorized: incorrect username or password", server))
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("login to %s: %s", server, resp.Status)
	}
	return nil
}

// do sends req, answering an authentication challenge once: basic
// credentials, or a bearer token fetched for scope ("" for the ping).
// Transient failures of idempotent requests are retried with back-off.
func (r *Repository) do(req *http.Request, scope string) (*http.Response, error) {
	key := r.base + " " + scope
	r.c.mu.Lock()
	tok := r.c.tokens[key]
	r.c.mu.Unlock()
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if r.auth.RegistryToken != "" {
		req.Header.Set("Authorization", "Bearer "+r.auth.RegistryToken)
	}
	resp, err := r.send(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return resp, nil
	}
	challenge := resp.Header.Get("WWW-Authenticate")
	scheme, params := parseChallenge(challenge)
	switch strings.ToLower(scheme) {
	case "basic":
		if r.auth.Username == "" {
			return resp, nil
		}
		resp.Body.Close()
		req2, err := rewind(req)
		if err != nil {
			return nil, err
		}
		req2.SetBasicAuth(r.auth.Username, r.auth.Password)
		return r.send(req2)
	case "bearer":
		resp.Body.Close()
		if s := params["scope"]; s != "" && scope == "" {
			scope = s
		}
		tok, err := r.fetchToken(req.Context(), params["realm"], params["service"], scope)
		if err != nil {
			return nil, err
		}
		r.c.mu.Lock()
		r.c.tokens[key] = tok
		r.c.mu.Unlock()
		req2, err := rewind(req)
		if err != nil {
			return nil, err
		}
		req2.Header.Set("Authorization", "Bearer "+tok)
		return r.send(req2)
	}
	return resp, nil
}

// send does one request, retrying idempotent ones on network errors and
// 5xx answers (three tries, 200 ms then 400 ms apart).
func (r *Repository) send(req *http.Request) (*http.Response, error) {
	retry := req.Method == http.MethodGet || req.Method == http.MethodHead
	var resp *http.Response
	var err error
	for attempt := 0; ; attempt++ {
		resp, err = r.c.http.Do(req)
		transient := err != nil || resp.StatusCode >= 500
		if !retry || !transient || attempt == 2 || req.Context().Err() != nil {
			break
		}
		if resp != nil {
			resp.Body.Close()
		}
		select {
		case <-time.After(time.Duration(200<<attempt) * time.Millisecond):
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	if err != nil {
		return nil, err // a *url.Error: it names the method and URL
	}
	return resp, nil
}

// rewind clones req for a second try, reopening its body.
func rewind(req *http.Request) (*http.Request, error) {
	req2 := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, errors.New("request body cannot be sent again after an authentication challenge")
		}
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		req2.Body = body
	}
	return req2, nil
}

// fetchToken gets a bearer token from realm for service and scope, with
// the client's credentials when it has them.
func (r *Repository) fetchToken(ctx context.Context, realm, service, scope string) (string, error) {
	if realm == "" {
		return "", errors.New("bearer challenge without a realm")
	}
	u, err := url.Parse(realm)
	if err != nil {
		return "", fmt.Errorf("token realm %q: %w", realm, err)
	}
	q := u.Query()
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range strings.Fields(scope) {
		q.Add("scope", s)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	if r.auth.Username != "" {
		req.SetBasicAuth(r.auth.Username, r.auth.Password)
	}
	resp, err := r.c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch token: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return "", errdefs.Unauthorized(fmt.Errorf("fetch token from %s: unauthorized: authentication required", u.Host))
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch token from %s: %s", u.Host, resp.Status)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("fetch token: %w", err)
	}
	if body.Token == "" {
		body.Token = body.AccessToken
	}
	if body.Token == "" {
		return "", errors.New("fetch token: empty token")
	}
	return body.Token, nil
}

// parseChallenge splits `Bearer realm="x",service="y"` into its scheme
// and parameters.
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
		if strings.HasPrefix(v, `"`) {
			end := strings.Index(v[1:], `"`)
			if end < 0 {
				params[k] = v[1:]
				break
			}
			params[k] = v[1 : end+1]
			rest = v[end+2:]
		} else {
			val, next, _ := strings.Cut(v, ",")
			params[k] = strings.TrimSpace(val)
			rest = next
		}
	}
	return scheme, params
}

// registryError turns a registry's error answer into an error of the
// right class.
func registryError(what string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	msg := resp.Status
	if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
		msg = strings.ToLower(e.Errors[0].Code) + ": " + e.Errors[0].Message
	}
	err := fmt.Errorf("%s: %s", what, msg)
	switch resp.StatusCode {
	case http.StatusNotFound:
		return errdefs.NotFound(err)
	case http.StatusUnauthorized, http.StatusForbidden:
		return errdefs.Unauthorized(err)
	case http.StatusBadRequest:
		return errdefs.InvalidParameter(err)
	}
	return err
}
