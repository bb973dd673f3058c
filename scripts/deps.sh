#!/usr/bin/env bash
# Installs the Debian packages berth's tests and demo use. Idempotent, quiet.
set -euo pipefail
pkgs=$(grep -v '^#' "$(dirname "$0")/apt-packages.txt" | tr '\n' ' ')
missing=()
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# Packages such as docker.io (installed only to compare against) must
	# not start their services: a running dockerd would change the host's
	# firewall under berth's networking tests.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
	fi
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
go mod download
