package auth

import (
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/errdefs"
)

// ChallengeError asks the client to authenticate (HTTP 401); Challenge is
// the WWW-Authenticate value.
type ChallengeError struct {
	Msg    string
	Header string
}

func (e *ChallengeError) Error() string     { return e.Msg }
func (e *ChallengeError) Challenge() string { return e.Header }

// Basic authenticates every request with HTTP basic auth against an
// htpasswd file, then applies the policy.
type Basic struct {
	Realm  string
	Users  *Htpasswd
	Policy Policy
}

// Authorize implements api.Authorizer.
func (b *Basic) Authorize(r *http.Request, need []Access) error {
	account := ""
	user, pass, ok := r.BasicAuth()
	if ok {
		if !b.Users.Verify(user, pass) {
			return b.challenge("invalid username or password")
		}
		account = user
	}
	for _, a := range need {
		if !b.Policy.Allowed(account, a) {
			if account == "" {
				return b.challenge("authentication required")
			}
			return errdefs.Forbidden(fmt.Errorf("%s may not %s %s", account, a.Action, a.Name))
		}
	}
	// The /v2/ ping needs no access but must still tell anonymous clients
	// that credentials are expected, unless anonymous pulls are allowed.
	if len(need) == 0 && account == "" && !b.Policy.AnonymousPull {
		return b.challenge("authentication required")
	}
	return nil
}

func (b *Basic) challenge(msg string) error {
	realm := b.Realm
	if realm == "" {
		realm = "berth-registry"
	}
	return &ChallengeError{Msg: msg, Header: fmt.Sprintf("Basic realm=%q", realm)}
}

// CanPull reports whether the request's (already verified) user may pull
// repo; the registry asks before mounting a blob without a source.
func (b *Basic) CanPull(r *http.Request, repo string) bool {
	account := ""
	if user, pass, ok := r.BasicAuth(); ok && b.Users.Verify(user, pass) {
		account = user
	}
	return b.Policy.Allowed(account, Access{Type: "repository", Name: repo, Action: ActionPull})
}
