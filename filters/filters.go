// Package filters parses the `filters` query parameter of the Engine API and
// answers the questions list endpoints ask of it.
//
// Clients send two JSON shapes: the map form of the Go client
// ({"label":{"a=b":true}}) and the list form of docker-py ({"label":["a=b"]}).
// Both are accepted.
package filters

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/berth-dev/berth/errdefs"
)

// Args holds filter values by key.
type Args map[string]map[string]bool

// FromJSON parses the filters parameter; "" gives empty Args.
func FromJSON(s string) (Args, error) {
	args := Args{}
	if s == "" {
		return args, nil
	}
	var asMap map[string]map[string]bool
	if err := json.Unmarshal([]byte(s), &asMap); err == nil {
		for k, vs := range asMap {
			for v, on := range vs {
				if on {
					args.Add(k, v)
				}
			}
		}
		return args, nil
	}
	var asList map[string][]string
	if err := json.Unmarshal([]byte(s), &asList); err != nil {
		return nil, errdefs.InvalidParameterf("invalid filter %q: %v", s, err)
	}
	for k, vs := range asList {
		for _, v := range vs {
			args.Add(k, v)
		}
	}
	return args, nil
}

// Add adds one value under key.
func (a Args) Add(key, value string) {
	if a[key] == nil {
		a[key] = map[string]bool{}
	}
	a[key][value] = true
}

// Len is the number of keys.
func (a Args) Len() int { return len(a) }

// Has reports whether key was given.
func (a Args) Has(key string) bool { return len(a[key]) > 0 }

// Get returns the values of key, sorted.
func (a Args) Get(key string) []string {
	out := make([]string, 0, len(a[key]))
	for v := range a[key] {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// Validate fails with InvalidParameter if a key is not among accepted.
func (a Args) Validate(accepted ...string) error {
	for k := range a {
		ok := false
		for _, acc := range accepted {
			if k == acc {
				ok = true
				break
			}
		}
		if !ok {
			return errdefs.InvalidParameterf("invalid filter '%s'", k)
		}
	}
	return nil
}

// ExactMatch is true when key is absent or value is one of its values.
func (a Args) ExactMatch(key, value string) bool {
	if !a.Has(key) {
		return true
	}
	return a[key][value]
}

// Match is true when key is absent, or value equals one of key's values, or
// matches it as a regular expression (Docker's rule for name filters).
func (a Args) Match(key, value string) bool {
	if !a.Has(key) {
		return true
	}
	for pattern := range a[key] {
		if pattern == value {
			return true
		}
		if re, err := regexp.Compile(pattern); err == nil && re.MatchString(value) {
			return true
		}
	}
	return false
}

// MatchLabels is true when every label filter ("k" or "k=v", "k!=v") holds for labels.
func (a Args) MatchLabels(key string, labels map[string]string) bool {
	for f := range a[key] {
		switch {
		case strings.Contains(f, "!="):
			k, v, _ := strings.Cut(f, "!=")
			if got, ok := labels[k]; ok && got == v {
				return false
			}
		case strings.Contains(f, "="):
			k, v, _ := strings.Cut(f, "=")
			if got, ok := labels[k]; !ok || got != v {
				return false
			}
		default:
			if _, ok := labels[f]; !ok {
				return false
			}
		}
	}
	return true
}

// Bool returns the boolean value of key (Docker's "dangling=true" style).
func (a Args) Bool(key string) (value, set bool, err error) {
	if !a.Has(key) {
		return false, false, nil
	}
	vs := a.Get(key)
	if len(vs) > 1 {
		return false, true, errdefs.InvalidParameterf("invalid filter '%s': only one value allowed", key)
	}
	switch strings.ToLower(vs[0]) {
	case "true", "1":
		return true, true, nil
	case "false", "0":
		return false, true, nil
	}
	return false, true, errdefs.InvalidParameter(fmt.Errorf("invalid filter '%s=%s'", key, vs[0]))
}
