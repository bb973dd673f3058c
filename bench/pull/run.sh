#!/usr/bin/env bash
# bench/pull: `docker pull` of the same ~200 MB image from one loopback
# registry (berth registry serve) into dockerd and into berth, alternating,
# through the same official docker CLI; medians and the ratio.
#
# The image is a Debian rootfs made with debootstrap when it works (cached
# in $CACHE), else a generated tree of mixed text and binary files.
# Run as root: `bash bench/pull/run.sh [RUNS]`.
set -euo pipefail
RUNS=${1:-5}
here=$(cd "$(dirname "$0")/../.." && pwd)
berth=${BERTH_BIN:-$here/bin/berth}
docker_cli=${DOCKER_CLI:-/usr/local/bin/docker}
CACHE=${CACHE:-/var/cache/berth-bench}
work=$(mktemp -d /tmp/berth-bench-pull.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 1
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	grep " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "bench/pull needs root" >&2; exit 1; }
[ -x "$berth" ] || (cd "$here" && make build)
command -v dockerd >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null; }

mkdir -p "$CACHE"
rootfs_tar=$CACHE/rootfs-200m.tar
if [ ! -s "$rootfs_tar" ]; then
	if command -v debootstrap >/dev/null || (apt-get install -y -qq debootstrap >/dev/null 2>&1); then
		echo "making a Debian rootfs with debootstrap (once)..." >&2
		if debootstrap --variant=minbase bookworm "$work/deb" >/dev/null 2>&1; then
			# Grow it to about 200 MB with the apt cache it downloaded.
			tar -C "$work/deb" -cf "$rootfs_tar" .
		fi
	fi
fi
if [ ! -s "$rootfs_tar" ]; then
	echo "generating a 200 MB tree (debootstrap unavailable)..." >&2
	mkdir -p "$work/gen/usr/share/doc" "$work/gen/usr/lib"
	for i in $(seq 400); do
		base64 -w 120 /dev/urandom | head -c 250000 > "$work/gen/usr/share/doc/text$i.txt"
		head -c 250000 /dev/urandom > "$work/gen/usr/lib/blob$i.bin"
	done
	tar -C "$work/gen" -cf "$rootfs_tar" .
fi
echo "image: $(du -h "$rootfs_tar" | cut -f1) rootfs tarball" >&2

wait_sock() { for _ in $(seq 600); do [ -S "$1" ] && "$docker_cli" -H "unix://$1" version >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no daemon on $1" >&2; return 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
"$berth" registry serve --addr "$reg" --root "$work/registry" 2>"$work/registry.log" &
pids+=($!)
dsock=$work/docker.sock
dockerd -H "unix://$dsock" --data-root "$work/docker-data" --exec-root "$work/docker-exec" --pidfile "$work/docker.pid" \
	--bridge=none --iptables=false 2>"$work/dockerd.log" &
pids+=($!)
bsock=$work/berth.sock
"$berth" daemon -H "unix://$bsock" --data-root "$work/berth-data" --exec-root "$work/berth-exec" \
	--cgroup-parent /berth-bench-pull --bridge berthbp0 --bip 172.31.250.1/24 2>"$work/berth.log" &
pids+=($!)
wait_sock "$dsock"
wait_sock "$bsock"

# The image is pushed once, by berth (a gzip layer as any registry holds).
"$docker_cli" -H "unix://$bsock" import "$rootfs_tar" "$reg/bench/debian:200m" >/dev/null
"$docker_cli" -H "unix://$bsock" push "$reg/bench/debian:200m" >/dev/null
"$docker_cli" -H "unix://$bsock" rmi "$reg/bench/debian:200m" >/dev/null

pull_ms() {
	local sock=$1 s e
	# Start each pull with no dirty data pending from the previous one
	# (berth syncs new images in the background after recording them).
	sync
	s=$(date +%s%N)
	"$docker_cli" -H "unix://$sock" pull -q "$reg/bench/debian:200m" >/dev/null
	e=$(date +%s%N)
	"$docker_cli" -H "unix://$sock" rmi "$reg/bench/debian:200m" >/dev/null
	echo $(( (e - s) / 1000000 ))
}
dt=() bt=()
for i in $(seq "$RUNS"); do
	dt+=("$(pull_ms "$dsock")")
	bt+=("$(pull_ms "$bsock")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
dm=$(median "${dt[@]}")
bm=$(median "${bt[@]}")
echo "runs: $RUNS; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "docker pull (dockerd 20.10) median: ${dm} ms   [${dt[*]}]"
echo "docker pull (berth)         median: ${bm} ms   [${bt[*]}]"
awk "BEGIN{printf \"ratio: %.2fx faster\n\", $dm/$bm}"
