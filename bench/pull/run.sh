#!/bin/bash
# bench/pull: pull the same ~200 MB single-layer image from a loopback
# `berth registry serve` into dockerd and into berth, alternating, N times
# (rmi between pulls), and print the medians and their ratio.
#
#   bench/pull/run.sh [N]          (default N=5; needs root, dockerd, docker CLI)
#
# The image is a debootstrap'ed Debian minbase rootfs (plus /usr/share
# padding up to ~200 MB) when debootstrap can reach the Debian mirror,
# else a tree of random and text files of the same size.
set -euo pipefail
N=${1:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
W=${BENCH_DIR:-/tmp/berth-bench-pull}
mkdir -p "$W"
BERTH="$W/berth"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$BERTH" ./cmd/berth)

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	umount -R "$W/dockerd/data" 2>/dev/null || true
}
trap cleanup EXIT

# 1. The image's root filesystem, cached between runs.
if [ ! -f "$W/rootfs.tar" ]; then
	if [ -f "$W/rootfs/etc/debian_version" ] && [ ! -d "$W/rootfs/usr/share/bench" ]; then
		kind="debootstrap bookworm minbase"
	elif rm -rf "$W/rootfs" && command -v debootstrap >/dev/null && timeout 600 debootstrap --variant=minbase bookworm "$W/rootfs" http://deb.debian.org/debian >"$W/debootstrap.log" 2>&1; then
		kind="debootstrap bookworm minbase"
	else
		rm -rf "$W/rootfs"; mkdir -p "$W/rootfs/usr/share"
		kind="random files"
	fi
	# Pad to ~200 MB with a mix of incompressible and text files, as a
	# real distribution image has.
	size=$(du -sm "$W/rootfs" | cut -f1)
	i=0
	mkdir -p "$W/rootfs/usr/share/bench"
	while [ "$size" -lt 200 ]; do
		head -c 2M /dev/urandom >"$W/rootfs/usr/share/bench/bin$i"
		base64 -w 76 </dev/urandom | head -c 2M >"$W/rootfs/usr/share/bench/doc$i.txt"
		i=$((i + 1)); size=$((size + 4))
	done
	tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
	echo "$kind" >"$W/kind"
fi
echo "image: $(cat "$W/kind"), $(du -m "$W/rootfs.tar" | cut -f1) MB uncompressed"

# 2. Registry, berth daemon and dockerd, each on its own roots.
rm -rf "$W/reg" "$W/berthd" "$W/dockerd"
mkdir -p "$W/reg" "$W/berthd" "$W/dockerd"
"$BERTH" registry serve --addr 127.0.0.1:0 --root "$W/reg" 2>"$W/reg.log" &
pids+=($!)
"$BERTH" daemon --data-root "$W/berthd/data" --exec-root "$W/berthd/run" -H "unix://$W/berthd/sock" \
	--bridge berthbench0 --bip 172.30.251.1/24 --cgroup-parent /berth-bench-pull >"$W/berthd.log" 2>&1 &
pids+=($!)
dockerd --data-root "$W/dockerd/data" --exec-root "$W/dockerd/run" -H "unix://$W/dockerd/sock" \
	--pidfile "$W/dockerd/pid" --bridge=none --iptables=false --ip6tables=false >"$W/dockerd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	grep -q 'addr=127' "$W/reg.log" 2>/dev/null && [ -S "$W/berthd/sock" ] && [ -S "$W/dockerd/sock" ] && break
	sleep 0.2
done
REG=$(grep -o 'addr=127[0-9.:]*' "$W/reg.log" | head -1 | cut -d= -f2)
IMG="$REG/bench/debian:1"
B() { DOCKER_HOST="unix://$W/berthd/sock" DOCKER_CONFIG="$W/cfg" docker "$@"; }
D() { DOCKER_HOST="unix://$W/dockerd/sock" DOCKER_CONFIG="$W/cfg" docker "$@"; }
D version >/dev/null

# 3. Import into berth and push (berth gzips the layer with pgzip).
B import "$W/rootfs.tar" "$IMG" >/dev/null
t0=$(date +%s.%N)
B push "$IMG" >/dev/null
t1=$(date +%s.%N)
echo "push (berth, gzip + upload): $(echo "$t1 - $t0" | bc) s, blob $(du -m "$W/reg" | tail -1 | cut -f1) MB in the registry"
B rmi "$IMG" >/dev/null

# 4. Alternate pulls.
timeit() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
dk=(); bt=()
for i in $(seq "$N"); do
	dk+=("$(timeit D pull "$IMG")")
	D rmi "$IMG" >/dev/null
	bt+=("$(timeit B pull "$IMG")")
	B rmi "$IMG" >/dev/null
	echo "run $i: dockerd ${dk[-1]} s, berth ${bt[-1]} s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
md=$(median "${dk[@]}"); mb=$(median "${bt[@]}")
echo "median pull: dockerd $md s, berth $mb s, dockerd/berth = $(echo "scale=2; $md / $mb" | bc)x"
# The store is back to empty after rmi: nothing leaked.
echo "berth image store after rmi: $(find "$W/berthd/data/image/content/blobs" -type f | wc -l) blobs, $(ls "$W/berthd/data/image/overlay" | wc -l) snapshots"
