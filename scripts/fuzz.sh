#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time (default 5s each).
set -euo pipefail
t=${1:-5s}
for pkg in $(go list ./...); do
	for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		echo "== fuzz $pkg $f ($t)"
		go test -run '^$' -fuzz "^${f}\$" -fuzztime "$t" "$pkg"
	done
done
