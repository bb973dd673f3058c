#!/usr/bin/env bash
# Runs the OCI distribution-spec conformance suite (v1.1, every API and data
# area on) against `bin/berth registry serve` on a free port with a
# throw-away root, three times: anonymous, bearer-token mode and basic auth.
# Exits non-zero on any failure or skip. Assumes bin/berth exists.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFORMANCE=github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111
BERTH=${BERTH:-$PWD/bin/berth}
[ -x "$BERTH" ] || { echo "registry-conformance: $BERTH missing (run make build)" >&2; exit 1; }

work=$(mktemp -d /tmp/berth-regconf.XXXXXX)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

# The suite is a main package: install it into a private GOBIN.
GOBIN="$work/bin" GOFLAGS=-mod=mod go install "$CONFORMANCE"

# Every API area, including those the 1.1 defaults leave off.
export OCI_VERSION=1.1 OCI_TLS=disabled OCI_LOG=${OCI_LOG:-warn}
export OCI_REPO1=conformance/repo1 OCI_REPO2=conformance/repo2
export OCI_API_PING=true OCI_API_PULL=true OCI_API_PUSH=true
export OCI_API_BLOBS_ATOMIC=true OCI_API_BLOBS_DELETE=true OCI_API_BLOBS_DIGEST_HEADER=true
export OCI_API_BLOBS_MOUNT_ANONYMOUS=true OCI_API_BLOBS_UPLOAD_CANCEL=true
export OCI_API_MANIFESTS_ATOMIC=true OCI_API_MANIFESTS_DELETE=true OCI_API_MANIFESTS_DIGEST_HEADER=true
export OCI_API_MANIFESTS_TAG_PARAM=true
export OCI_API_TAGS_ATOMIC=true OCI_API_TAGS_DELETE=true OCI_API_TAGS_LIST=true
export OCI_API_REFERRER=true
# Every data area. Sparse manifests (descriptors never pushed) stay off:
# the registry refuses manifests whose blobs are missing, by design.
for d in IMAGE INDEX INDEX_LIST ARTIFACT SUBJECT SUBJECT_MISSING ARTIFACT_LIST SUBJECT_LIST \
	DATA_FIELD NONDISTRIBUTABLE CUSTOM_FIELDS NO_LAYERS EMPTY_BLOB SHA512; do
	export "OCI_DATA_$d=true"
done
export OCI_DATA_SPARSE=false

# run_suite NAME [serve flags...]: one registry, one conformance run; a
# run passes only with 0 failures, 0 errors and 0 skips.
run_suite() {
	local name=$1; shift
	local dir="$work/$name" port
	mkdir -p "$dir"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
	"$BERTH" registry serve --addr "127.0.0.1:$port" --root "$dir/root" --delete --log-level warn "$@" \
		>"$dir/server.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		curl -sS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log" >&2; return 1; }
		sleep 0.1
	done
	local rc=0
	(cd "$dir" && OCI_REGISTRY="127.0.0.1:$port" OCI_RESULTS_DIR="$dir/results" "$work/bin/conformance") \
		>"$dir/conformance.out" 2>&1 || rc=$?
	kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=
	echo "== conformance ($name)"
	sed -n '/^OCI Conformance Result/,/^$/p' "$dir/conformance.out"
	if [ -n "${KEEP_RESULTS:-}" ]; then mkdir -p "$KEEP_RESULTS"; cp -r "$dir/results" "$KEEP_RESULTS/$name"; fi
	if [ $rc -ne 0 ] || ! grep -Eq '^ +Skip\.+: +0$' "$dir/conformance.out"; then
		cat "$dir/conformance.out"
		echo "registry-conformance ($name): FAILED (exit $rc); server log:" >&2
		tail -50 "$dir/server.log" >&2
		return 1
	fi
}

run_suite anonymous
# The same suite through the bearer-token flow: 401, token from /token
# with htpasswd credentials, retry.
echo conformance | "$BERTH" registry passwd conformance >"$work/htpasswd"
OCI_USERNAME=conformance OCI_PASSWORD=conformance run_suite token --token --htpasswd "$work/htpasswd"
OCI_USERNAME=conformance OCI_PASSWORD=conformance run_suite basic --htpasswd "$work/htpasswd"
echo "registry-conformance: ok"
