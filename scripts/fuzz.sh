#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time (default 5s each).
# A failure that wrote a failing input fails the run. A failure that wrote
# none (the fuzzing engine itself stalled or lost a worker, seen on loaded
# 2-core machines) is retried, and after three is reported, not counted.
set -euo pipefail
t=${1:-5s}
# inputs DIR: how many saved inputs a fuzz target has.
inputs() { { ls "$1" 2>/dev/null || true; } | wc -l; }
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		for attempt in 1 2 3; do
			echo "== fuzz $pkg $f ($t, attempt $attempt)"
			before=$(inputs "$dir/testdata/fuzz/$f")
			if go test -run '^$' -fuzz "^${f}\$" -fuzztime "$t" "$pkg"; then
				break
			fi
			after=$(inputs "$dir/testdata/fuzz/$f")
			if [ "$after" -gt "$before" ]; then
				# A saved input is a real finding: it fails the run.
				echo "fuzz: $f failed; the failing input is in $dir/testdata/fuzz/$f" >&2
				exit 1
			fi
			if [ "$attempt" = 3 ]; then
				# No input saved: the fuzzing engine itself gave up (its
				# workers missed a deadline on a loaded machine).
				echo "fuzz: $f: the fuzzing engine failed three times without a finding; not counted" >&2
			fi
		done
	done
done
