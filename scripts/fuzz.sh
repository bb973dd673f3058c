#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time (default 5s each).
# A failure that wrote a failing input fails the run. A failure that wrote
# none (the fuzzing engine itself stalled or lost a worker, seen on loaded
# 2-core machines) is retried once before it counts.
set -euo pipefail
t=${1:-5s}
# inputs DIR: how many saved inputs a fuzz target has.
inputs() { { ls "$1" 2>/dev/null || true; } | wc -l; }
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		for attempt in 1 2; do
			echo "== fuzz $pkg $f ($t, attempt $attempt)"
			before=$(inputs "$dir/testdata/fuzz/$f")
			if go test -run '^$' -fuzz "^${f}\$" -fuzztime "$t" "$pkg"; then
				break
			fi
			after=$(inputs "$dir/testdata/fuzz/$f")
			if [ "$after" -gt "$before" ] || [ "$attempt" = 2 ]; then
				echo "fuzz: $f failed" >&2
				exit 1
			fi
		done
	done
done
