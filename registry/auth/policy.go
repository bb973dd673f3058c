package auth

import (
	"path"
	"strings"
)

// Rule grants actions on repositories to an account. Account "*" is any
// authenticated user; "" is anonymous. A repository pattern is "*" (all),
// "prefix/*" (everything under prefix, at any depth) or a path.Match pattern.
type Rule struct {
	Account string   `yaml:"account" json:"account"`
	Repos   []string `yaml:"repositories" json:"repositories"`
	Actions []string `yaml:"actions" json:"actions"`
}

// Policy decides which accesses an account gets.
type Policy struct {
	// Rules, if any, are the only source of grants. Without rules every
	// authenticated user may do everything.
	Rules []Rule
	// AnonymousPull lets unauthenticated clients pull (and list).
	AnonymousPull bool
}

// Allowed reports whether account (empty: anonymous) may perform a.
func (p *Policy) Allowed(account string, a Access) bool {
	if account == "" && p.AnonymousPull && (a.Action == ActionPull || (a.Type == "registry" && a.Name == "catalog")) {
		return true
	}
	if len(p.Rules) == 0 {
		return account != ""
	}
	for _, r := range p.Rules {
		if r.Account != account && (r.Account != "*" || account == "") {
			continue
		}
		if !contains(r.Actions, a.Action) && !contains(r.Actions, "*") {
			continue
		}
		if a.Type == "registry" {
			if contains(r.Repos, "*") {
				return true
			}
			continue
		}
		for _, pat := range r.Repos {
			if matchRepo(pat, a.Name) {
				return true
			}
		}
	}
	return false
}

func matchRepo(pat, name string) bool {
	if pat == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pat, "/*"); ok && strings.HasPrefix(name, prefix+"/") {
		return true
	}
	ok, _ := path.Match(pat, name)
	return ok
}
