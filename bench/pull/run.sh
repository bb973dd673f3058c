#!/usr/bin/env bash
# Pull speed, berth versus dockerd: a ~200 MB single-layer image (a
# debootstrap'ed Debian rootfs when debootstrap works, else generated files)
# is pushed to a loopback `berth registry serve`, then pulled alternately
# into dockerd and into the berth daemon RUNS times (rmi in between), both
# through the same docker CLI. Prints medians and the ratio.
#
# Needs root, bin/berth, dockerd (Debian's docker.io), docker CLI.
# Env: RUNS (default 5), ROOTFS (an existing rootfs dir to use), KEEP=1 keeps $work.
set -euo pipefail
cd "$(dirname "$0")/../.."
BERTH=${BERTH:-$PWD/bin/berth}
RUNS=${RUNS:-5}
DOCKER=${DOCKER:-$(command -v docker)}
[ -x "$BERTH" ] || { echo "build bin/berth first (make build)" >&2; exit 1; }
command -v dockerd >/dev/null || { echo "dockerd not installed (apt-get install docker.io)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }

work=$(mktemp -d /tmp/berth-pullbench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	umount -R "$work"/dockerd/exec 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
waitsock() { for _ in $(seq 200); do DOCKER_HOST=unix://$1 "$DOCKER" version >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "daemon on $1 did not start" >&2; return 1; }

# 1. The rootfs.
rootfs=${ROOTFS:-}
cache=/tmp/berth-pullbench-rootfs.tar
if [ -z "$rootfs" ]; then
	rootfs=$work/rootfs
	mkdir -p "$rootfs"
	if [ -s "$cache" ]; then
		tar -C "$rootfs" -xf "$cache"
	elif command -v debootstrap >/dev/null && debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1; then
		tar -C "$rootfs" -cf "$cache" .
	else
		echo "debootstrap failed (see $work/debootstrap.log): generating files instead" >&2
		rm -rf "$rootfs"; mkdir -p "$rootfs"
		python3 - "$rootfs" <<'PY'
import os, random, sys
root = sys.argv[1]; rnd = random.Random(42); words = [os.urandom(6).hex() for _ in range(5000)]
total = 0
for d in range(100):
    os.makedirs(f"{root}/d{d}", exist_ok=True)
    for f in range(80):
        n = rnd.randint(1000, 50000)
        with open(f"{root}/d{d}/f{f}", "w") as fh:
            fh.write(" ".join(rnd.choice(words) for _ in range(n // 13)))
        total += n
PY
	fi
fi
echo "rootfs: $(du -sh "$rootfs" | cut -f1), $(find "$rootfs" | wc -l) entries"

# 2. Registry, berth daemon, dockerd.
port=$(freeport); reg=127.0.0.1:$port
"$BERTH" registry serve --addr "$reg" --root "$work/registry" --log-level warn >"$work/registry.log" 2>&1 & pids+=($!)
"$BERTH" daemon --data-root "$work/berth/data" --exec-root "$work/berth/run" -H "unix://$work/berth.sock" --log-level warn >"$work/berth.log" 2>&1 & pids+=($!)
dockerd --data-root "$work/dockerd/data" --exec-root "$work/dockerd/exec" -H "unix://$work/docker.sock" \
	--pidfile "$work/dockerd/docker.pid" --bridge=none --iptables=false --ip6tables=false >"$work/dockerd.log" 2>&1 & pids+=($!)
waitsock "$work/berth.sock"; waitsock "$work/docker.sock"
B="unix://$work/berth.sock"; K="unix://$work/docker.sock"
img=$reg/bench/debian:1

# 3. Build and push the image (through berth: import, then push gzip-compressed).
tar -C "$rootfs" -c . | DOCKER_HOST=$B "$DOCKER" import - "$img" >/dev/null
t0=$(now); DOCKER_HOST=$B "$DOCKER" push "$img" >/dev/null; t1=$(now)
echo "push through berth: $(echo "$t1 - $t0" | bc) s"
DOCKER_HOST=$B "$DOCKER" rmi "$img" >/dev/null
size=$(DOCKER_HOST=$K "$DOCKER" pull -q "$img" >/dev/null && DOCKER_HOST=$K "$DOCKER" image inspect -f '{{.Size}}' "$img")
DOCKER_HOST=$K "$DOCKER" rmi "$img" >/dev/null
echo "image: $img, $((size / 1000000)) MB unpacked"

# 4. Alternate pulls.
: >"$work/docker.times"; : >"$work/berth.times"
for i in $(seq "$RUNS"); do
	for who in docker berth; do
		h=$K; [ $who = berth ] && h=$B
		sync
		t0=$(now); DOCKER_HOST=$h "$DOCKER" pull -q "$img" >/dev/null; t1=$(now)
		echo "$t1 - $t0" | bc >>"$work/$who.times"
		DOCKER_HOST=$h "$DOCKER" rmi "$img" >/dev/null
	done
	echo "run $i: dockerd $(tail -1 "$work/docker.times") s, berth $(tail -1 "$work/berth.times") s"
done
d=$(median <"$work/docker.times"); b=$(median <"$work/berth.times")
printf '\nmedian of %d pulls: dockerd %.2f s, berth %.2f s, berth is %.2fx faster\n' "$RUNS" "$d" "$b" "$(echo "$d / $b" | bc -l)"
