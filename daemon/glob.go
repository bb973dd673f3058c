package daemon

import "path"

// globMatch is path.Match that treats a malformed pattern as no match.
func globMatch(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}
