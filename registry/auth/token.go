package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Token is the bearer-token mode: the registry runs its own token endpoint
// (the realm a 401 points to), authenticates clients there with htpasswd
// basic auth, and issues short-lived HS256 JWTs listing the granted scopes.
// Registry requests then carry the token and are checked against it.
type Token struct {
	// Realm is the token endpoint URL; empty derives it from each request
	// (scheme and Host) and Path.
	Realm   string
	Path    string
	Service string
	Key     []byte        // HMAC key, at least 32 bytes
	Expiry  time.Duration // token lifetime
	Users   *Htpasswd     // nil: every client is anonymous
	Policy  Policy
	Now     func() time.Time
}

type claimAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

type claims struct {
	Issuer    string        `json:"iss"`
	Subject   string        `json:"sub"`
	Audience  string        `json:"aud"`
	Expiry    int64         `json:"exp"`
	NotBefore int64         `json:"nbf"`
	IssuedAt  int64         `json:"iat"`
	ID        string        `json:"jti"`
	Access    []claimAccess `json:"access"`
}

// Strict decoding: without it, flipping unused trailing bits would give
// other strings that verify as the same token.
var b64 = base64.RawURLEncoding.Strict()

const jwtHeader = `{"alg":"HS256","typ":"JWT"}`

func (t *Token) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Token) sign(c claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	msg := b64.EncodeToString([]byte(jwtHeader)) + "." + b64.EncodeToString(payload)
	mac := hmac.New(sha256.New, t.Key)
	mac.Write([]byte(msg))
	return msg + "." + b64.EncodeToString(mac.Sum(nil)), nil
}

var errBadToken = errors.New("invalid token")

// verify checks a token's signature, algorithm, audience and lifetime.
func (t *Token) verify(tok string) (*claims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errBadToken
	}
	hdr, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, errBadToken
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hdr, &h) != nil || h.Alg != "HS256" {
		return nil, errBadToken
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return nil, errBadToken
	}
	mac := hmac.New(sha256.New, t.Key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, errBadToken
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, errBadToken
	}
	var c claims
	if json.Unmarshal(payload, &c) != nil {
		return nil, errBadToken
	}
	now := t.now().Unix()
	if c.Audience != t.Service || now >= c.Expiry || now+60 < c.NotBefore {
		return nil, errBadToken
	}
	return &c, nil
}

func (c *claims) allows(a Access) bool {
	for _, ca := range c.Access {
		if ca.Type == a.Type && ca.Name == a.Name && (contains(ca.Actions, a.Action) || contains(ca.Actions, "*")) {
			return true
		}
	}
	return false
}

// Authorize implements api.Authorizer for registry requests.
func (t *Token) Authorize(r *http.Request, need []Access) error {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		// Anonymous pulls need no token at all when the policy allows them.
		if t.Policy.AnonymousPull && len(need) > 0 && allAllowed(&t.Policy, "", need) {
			return nil
		}
		return t.challenge(r, need, "", "authentication required")
	}
	c, err := t.verify(strings.TrimSpace(tok))
	if err != nil {
		return t.challenge(r, need, "invalid_token", "invalid or expired token")
	}
	for _, a := range need {
		if !c.allows(a) {
			return t.challenge(r, need, "insufficient_scope", fmt.Sprintf("token does not grant %s on %s", a.Action, a.Name))
		}
	}
	return nil
}

func allAllowed(p *Policy, account string, need []Access) bool {
	for _, a := range need {
		if !p.Allowed(account, a) {
			return false
		}
	}
	return true
}

func (t *Token) realm(r *http.Request) string {
	if t.Realm != "" {
		return t.Realm
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + t.Path
}

func (t *Token) challenge(r *http.Request, need []Access, code, msg string) error {
	v := fmt.Sprintf("Bearer realm=%q,service=%q", t.realm(r), t.Service)
	if s := ScopeString(need); s != "" {
		v += fmt.Sprintf(",scope=%q", s)
	}
	if code != "" {
		v += fmt.Sprintf(",error=%q", code)
	}
	return &ChallengeError{Msg: msg, Header: v}
}

// ServeHTTP is the token endpoint: GET with basic auth and scope
// parameters (the Docker flow), or POST with an OAuth2 password or
// anonymous grant in a form (the flow containerd and oras use).
func (t *Token) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var user, pass string
	var hasCreds bool
	var scopes []string
	var service string
	switch r.Method {
	case http.MethodGet:
		user, pass, hasCreds = r.BasicAuth()
		q := r.URL.Query()
		scopes = q["scope"]
		service = q.Get("service")
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_request", "malformed form")
			return
		}
		if r.PostForm.Get("grant_type") == "password" {
			user, pass, hasCreds = r.PostForm.Get("username"), r.PostForm.Get("password"), true
		} else if u, p, ok := r.BasicAuth(); ok {
			user, pass, hasCreds = u, p, true
		}
		scopes = r.PostForm["scope"]
		service = r.PostForm.Get("service")
	default:
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "use GET or POST")
		return
	}
	if service != "" && service != t.Service {
		tokenError(w, http.StatusBadRequest, "invalid_request", "unknown service")
		return
	}
	account := ""
	if hasCreds {
		if t.Users == nil || !t.Users.Verify(user, pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="berth-registry-token"`)
			tokenError(w, http.StatusUnauthorized, "invalid_grant", "invalid username or password")
			return
		}
		account = user
	} else if t.Users != nil && !t.Policy.AnonymousPull {
		w.Header().Set("WWW-Authenticate", `Basic realm="berth-registry-token"`)
		tokenError(w, http.StatusUnauthorized, "invalid_client", "authentication required")
		return
	}
	if t.Users == nil {
		// Without a user database everyone is let in under one name.
		account = "anonymous"
	}
	var granted []claimAccess
	for _, s := range scopes {
		for _, sc := range strings.Split(s, " ") {
			accesses, ok := ParseScope(sc)
			if !ok {
				continue
			}
			ca := claimAccess{Type: accesses[0].Type, Name: accesses[0].Name}
			for _, a := range accesses {
				if t.Policy.Allowed(account, a) || (t.Users == nil && len(t.Policy.Rules) == 0) {
					ca.Actions = append(ca.Actions, a.Action)
				}
			}
			if len(ca.Actions) > 0 {
				granted = append(granted, ca)
			}
		}
	}
	now := t.now()
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	c := claims{
		Issuer:    t.Service,
		Subject:   account,
		Audience:  t.Service,
		Expiry:    now.Add(t.Expiry).Unix(),
		NotBefore: now.Add(-10 * time.Second).Unix(),
		IssuedAt:  now.Unix(),
		ID:        hex.EncodeToString(jti[:]),
		Access:    granted,
	}
	tok, err := t.sign(c)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", "cannot sign token")
		return
	}
	body, _ := json.Marshal(map[string]any{
		"token":        tok,
		"access_token": tok,
		"expires_in":   int(t.Expiry.Seconds()),
		"issued_at":    now.UTC().Format(time.RFC3339),
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func tokenError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// CanPull reports whether the account the request's token was issued to
// may pull repo, by the policy rather than by the token's own scopes
// (which only name the repositories the client asked about).
func (t *Token) CanPull(r *http.Request, repo string) bool {
	a := Access{Type: "repository", Name: repo, Action: ActionPull}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return t.Policy.AnonymousPull && t.Policy.Allowed("", a)
	}
	c, err := t.verify(strings.TrimSpace(tok))
	if err != nil {
		return false
	}
	if t.Users == nil && len(t.Policy.Rules) == 0 {
		return true
	}
	return t.Policy.Allowed(c.Subject, a)
}
