#!/usr/bin/env bash
# Dockerfile build times: berth's builder (through the docker CLI's classic
# /build, DOCKER_BUILDKIT=0) beside Docker's BuildKit (DOCKER_BUILDKIT=1 with
# Debian docker.io's 20.10 client at /usr/bin/docker, against its dockerd),
# on the same realistic multi-stage Dockerfile: a context of several hundred
# files, two independent stages built in parallel, a few RUN steps, on a
# busybox base imported into both daemons.
#
# Three cases, RUNS times each (default 5), medians and berth/BuildKit
# ratios:
#   cold     cache emptied first (berth builder prune -af / docker builder
#            prune -af, built image removed)
#   cached   nothing changed: the whole build from cache
#   onefile  one copied source file changed: rebuild from its COPY on
#
# Needs root, bin/berth (make build), dockerd + /usr/bin/docker (docker.io),
# /usr/local/bin/docker (CLI 28) and busybox. Not run by make test.
set -euo pipefail
cd "$(dirname "$0")/../.."
BERTH=${BERTH:-$PWD/bin/berth}
RUNS=${RUNS:-5}
DOCKER28=${DOCKER28:-/usr/local/bin/docker}
DOCKER20=${DOCKER20:-/usr/bin/docker}
[ -x "$BERTH" ] || { echo "build bin/berth first (make build)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
BB=$(command -v busybox) || { echo "busybox not installed" >&2; exit 1; }

work=$(mktemp -d /tmp/bbench.XXXXXX)
bpid= dpid=
cleanup() {
	[ -n "$bpid" ] && kill "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null || true
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null || true
	umount -R "$work/dk/data" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# A busybox rootfs tarball for both daemons.
mkdir -p "$work/bb/bin" "$work/bb/etc" "$work/bb/tmp"
cp "$BB" "$work/bb/bin/busybox"
for a in $("$BB" --list); do [ "$a" = busybox ] || ln -sf busybox "$work/bb/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" >"$work/bb/etc/passwd"
tar -C "$work/bb" -cf "$work/busybox.tar" .

# The context: an app of 400 source files in 20 packages, static assets,
# a .dockerignore'd directory, and a multi-stage Dockerfile.
ctx=$work/ctx
mkdir -p "$ctx/src" "$ctx/assets" "$ctx/node_modules/junk"
for p in $(seq 1 20); do
	mkdir -p "$ctx/src/pkg$p"
	for f in $(seq 1 20); do
		printf 'package pkg%d\n// file %d\nfunc F%d() int { return %d }\n' "$p" "$f" "$f" "$((p * f))" >"$ctx/src/pkg$p/f$f.go"
	done
done
for a in $(seq 1 100); do head -c 2048 /dev/urandom | base64 >"$ctx/assets/a$a.css"; done
for j in $(seq 1 200); do echo junk >"$ctx/node_modules/junk/j$j"; done
echo "node_modules" >"$ctx/.dockerignore"
cat >"$ctx/Dockerfile" <<'EOF'
FROM busybox AS build
WORKDIR /src
COPY src/ ./
RUN find . -name '*.go' | sort | xargs cat | md5sum > /checksum && mkdir -p /out && for d in pkg*; do cat $d/*.go | wc -l > /out/$d.lines; done

FROM busybox AS assets
COPY assets/ /assets/
RUN cat /assets/*.css | gzip -c > /bundle.css.gz && ls /assets | wc -l > /count

FROM busybox
ENV APP=/app
WORKDIR /app
COPY --from=build /out ./stats/
COPY --from=build /checksum ./
COPY --from=assets /bundle.css.gz /count ./static/
RUN echo "built $(cat checksum)" > version && chmod 644 version
EXPOSE 8080
CMD ["cat", "/app/version"]
EOF

# Daemons.
"$BERTH" daemon --data-root "$work/b/data" --exec-root "$work/b/run" -H "unix://$work/b.sock" --log-level warn >"$work/berth.log" 2>&1 &
bpid=$!
dockerd --data-root "$work/dk/data" --exec-root "$work/dk/exec" -H "unix://$work/d.sock" --pidfile "$work/d.pid" \
	--bridge=none --iptables=false --ip6tables=false >"$work/dockerd.log" 2>&1 &
dpid=$!
for _ in $(seq 300); do [ -S "$work/b.sock" ] && DOCKER_HOST=unix://$work/d.sock "$DOCKER20" version >/dev/null 2>&1 && break; sleep 0.1; done
bk() { DOCKER_HOST=unix://$work/d.sock DOCKER_BUILDKIT=1 "$DOCKER20" "$@"; }
be() { DOCKER_HOST=unix://$work/b.sock DOCKER_BUILDKIT=0 "$DOCKER28" "$@"; }
be import - busybox:latest <"$work/busybox.tar" >/dev/null
bk import - busybox:latest <"$work/busybox.tar" >/dev/null

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
timeit() { local t0 t1; t0=$(now); "$@" >"$work/last.log" 2>&1 || { cat "$work/last.log" >&2; exit 1; }; t1=$(now); echo "$t1 - $t0" | bc; }
reset() { # empty a side's build cache and drop the built image
	case $1 in
	berth) be rmi -f bench:1 >/dev/null 2>&1 || true; "$BERTH" -H "unix://$work/b.sock" builder prune -af >/dev/null ;;
	buildkit) bk rmi -f bench:1 >/dev/null 2>&1 || true; bk builder prune -af >/dev/null ;;
	esac
}
# Host network for RUN on both sides (dockerd runs without a bridge).
build() { case $1 in berth) be build --network host -t bench:1 "$ctx" ;; buildkit) bk build --network host -t bench:1 "$ctx" ;; esac; }

# One warm-up of each (first-use costs: BuildKit's snapshotter, page cache).
for side in berth buildkit; do reset $side; build $side >"$work/warm-$side.log" 2>&1 || { echo "$side build failed:" >&2; cat "$work/warm-$side.log" >&2; exit 1; }; done
be run --rm bench:1 | grep -q built || { echo "berth's image does not run" >&2; exit 1; }

declare -A res
for side in berth buildkit; do
	: >"$work/$side.cold"; : >"$work/$side.cached"; : >"$work/$side.onefile"
	for i in $(seq "$RUNS"); do
		reset $side
		timeit build $side >>"$work/$side.cold"
		timeit build $side >>"$work/$side.cached"
		echo "// touched $i $side" >>"$ctx/src/pkg7/f3.go"
		timeit build $side >>"$work/$side.onefile"
	done
	for c in cold cached onefile; do res[$side.$c]=$(median <"$work/$side.$c"); done
done

echo
echo "Dockerfile build, $(find "$ctx" -type f -not -path '*/node_modules/*' | wc -l) context files, 3 stages (2 parallel), median of $RUNS (seconds, wall clock of the docker CLI)"
printf '%-10s %10s %10s %12s\n' case berth buildkit berth/bk
for c in cold cached onefile; do
	printf '%-10s %10.3f %10.3f %12.2f\n' "$c" "${res[berth.$c]}" "${res[buildkit.$c]}" "$(echo "${res[berth.$c]} / ${res[buildkit.$c]}" | bc -l)"
done
