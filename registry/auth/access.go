// Package auth authenticates registry clients and decides what they may
// do: htpasswd (bcrypt) basic auth, or bearer tokens this registry signs
// itself and checks, with scopes per repository and action.
package auth

import (
	"sort"
	"strings"
)

// Access is one permission a request needs, as in a token scope
// "repository:library/alpine:pull": type, name and action.
type Access struct {
	Type   string // "repository" or "registry"
	Name   string // repository name, or "catalog"
	Action string // pull, push, delete, "*"
}

// Repository actions.
const (
	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
)

// ScopeString renders accesses as space-separated scopes, merging the
// actions of the same resource ("repository:a:pull,push").
func ScopeString(need []Access) string {
	type key struct{ t, n string }
	var order []key
	acts := map[key][]string{}
	for _, a := range need {
		k := key{a.Type, a.Name}
		if _, ok := acts[k]; !ok {
			order = append(order, k)
		}
		if !contains(acts[k], a.Action) {
			acts[k] = append(acts[k], a.Action)
		}
	}
	parts := make([]string, 0, len(order))
	for _, k := range order {
		a := acts[k]
		sort.Strings(a)
		parts = append(parts, k.t+":"+k.n+":"+strings.Join(a, ","))
	}
	return strings.Join(parts, " ")
}

// ParseScope parses one scope string ("repository:name:pull,push"); the
// name may itself contain ':' (a registry host with a port), so type is
// before the first ':' and actions after the last.
func ParseScope(s string) ([]Access, bool) {
	i := strings.IndexByte(s, ':')
	j := strings.LastIndexByte(s, ':')
	if i < 0 || j <= i {
		return nil, false
	}
	typ, name, actions := s[:i], s[i+1:j], s[j+1:]
	if typ == "" || name == "" || actions == "" {
		return nil, false
	}
	var out []Access
	for _, a := range strings.Split(actions, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, Access{Type: typ, Name: name, Action: a})
		}
	}
	return out, len(out) > 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
