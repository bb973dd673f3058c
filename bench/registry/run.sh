#!/usr/bin/env bash
# Push/pull throughput of a 200 MB image (4x50 MB and 1x200 MB layers) with
# crane, berth's registry side by side with Debian's docker-registry
# (distribution 2.8.2), each run on a fresh store; prints medians and
# ratios. Then 50 concurrent pushes of distinct small images to berth,
# checking nothing is lost and reporting the server's peak RSS.
#
# Needs: bin/berth, crane (CRANE=... or on PATH), docker-registry, python3.
# Not run by make test. RUNS=5 by default.
set -euo pipefail
cd "$(dirname "$0")/../.."
BERTH=${BERTH:-$PWD/bin/berth}
CRANE=${CRANE:-$(command -v crane || echo /tmp/regconf/bin/crane)}
DIST=${DIST:-$(command -v docker-registry || true)}
RUNS=${RUNS:-5}
# Pulls land in tmpfs so that the client's own disk writes do not blur the figures.
PULLDIR=${PULLDIR:-/dev/shm}
[ -x "$BERTH" ] || { echo "build bin/berth first" >&2; exit 1; }
[ -x "$CRANE" ] || { echo "crane not found: GOBIN=/tmp/x go install github.com/google/go-containerregistry/cmd/crane@latest" >&2; exit 1; }

work=$(mktemp -d /tmp/berth-regbench.XXXXXX)
srv=
stop() { if [ -n "$srv" ]; then kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; srv=; fi; }
trap 'stop; rm -rf "$work"' EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitup() { for _ in $(seq 100); do curl -fsS "http://$1/v2/" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "server on $1 did not start" >&2; return 1; }

start() { # start KIND ROOT -> sets srv and addr
	local port; port=$(freeport); addr=127.0.0.1:$port
	case $1 in
	berth) "$BERTH" registry serve --addr "$addr" --root "$2" --log-level warn >"$work/$1.log" 2>&1 & ;;
	dist)
		cat >"$work/dist.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $2}, delete: {enabled: true}}
http: {addr: $addr}
YAML
		"$DIST" serve "$work/dist.yml" >"$work/$1.log" 2>&1 & ;;
	esac
	srv=$!
	waitup "$addr"
}

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "generating images in $work ..."
python3 bench/registry/mklayout.py "$work/img4" 4 200
python3 bench/registry/mklayout.py "$work/img1" 1 200
MB=200

kinds="berth"
[ -n "$DIST" ] && kinds="berth dist" || echo "docker-registry not installed: berth only (apt-get install docker-registry)"

declare -A res
for shape in img4 img1; do
	for kind in $kinds; do
		: >"$work/$kind-$shape.push"; : >"$work/$kind-$shape.pull"
		for i in $(seq "$RUNS"); do
			root="$work/root-$kind"; rm -rf "$root"; mkdir -p "$root"
			start "$kind" "$root"
			t0=$(now); "$CRANE" push --insecure "$work/$shape" "$addr/bench/img:$i" >/dev/null 2>&1; t1=$(now)
			pulled=$(mktemp -d "$PULLDIR/berth-regbench-pull.XXXXXX")
			t2=$(now); "$CRANE" pull --insecure --format=oci "$addr/bench/img:$i" "$pulled/img" >/dev/null 2>&1; t3=$(now)
			rm -rf "$pulled"
			stop
			echo "$MB / ($t1 - $t0)" | bc -l >>"$work/$kind-$shape.push"
			echo "$MB / ($t3 - $t2)" | bc -l >>"$work/$kind-$shape.pull"
		done
		res[$kind-$shape-push]=$(median <"$work/$kind-$shape.push")
		res[$kind-$shape-pull]=$(median <"$work/$kind-$shape.pull")
	done
done
rm -rf "$work"/root-*

printf '\n%-22s %14s %14s %8s\n' "median of $RUNS (MB/s)" berth distribution ratio
for shape in img4 img1; do
	label=$([ $shape = img4 ] && echo "4x50MB" || echo "1x200MB")
	for op in push pull; do
		b=${res[berth-$shape-$op]}; d=${res[dist-$shape-$op]:-0}
		r=$( [ "$d" != 0 ] && echo "$b / $d" | bc -l || echo 0)
		printf '%-22s %14.1f %14.1f %7.2fx\n' "$label $op" "$b" "$d" "$r"
	done
done

# 50 concurrent pushes of distinct small images.
echo
root="$work/root-conc"; mkdir -p "$root"; start berth "$root"
for i in $(seq 50); do
	d="$work/small$i"; mkdir -p "$d/blobs/sha256"
	python3 bench/registry/mklayout.py "$d" 2 1 >/dev/null
done
t0=$(now)
pids=()
for i in $(seq 50); do "$CRANE" push --insecure "$work/small$i" "$addr/conc/img$i:v1" >/dev/null 2>&1 & pids+=($!); done
fail=0; for p in "${pids[@]}"; do wait "$p" || fail=$((fail+1)); done
t1=$(now)
ok=0; for i in $(seq 50); do "$CRANE" manifest --insecure "$addr/conc/img$i:v1" >/dev/null 2>&1 && ok=$((ok+1)); done
hwm=$(awk '/VmHWM/ {print $2/1024 " MB"}' /proc/$srv/status)
stop
printf '50 concurrent pushes: %d failed, %d/50 validate, %.2fs, server peak RSS %s\n' "$fail" "$ok" "$(echo "$t1 - $t0" | bc -l)" "$hwm"
[ "$fail" = 0 ] && [ "$ok" = 50 ]
