#!/bin/sh
# Installs what ward needs to build and test (Debian 12, as root), then builds
# it into build/. Safe to run again: it only installs what is missing.
set -eu
cd "$(dirname "$0")"
# prometheus: its promtool checks `ward metrics` (tests/test_metrics.c)
# python3-yaml: parses contrib/k8s/ward.yaml (tests/container_files.py)
# systemd (systemd-notify), python3-systemd (systemd.daemon.notify) and gunicorn
# (socket activation): real clients of command workers (tests/test_command.c)
packages="gcc make cmake pkg-config libsqlite3-dev libinih-dev libmicrohttpd-dev libcriterion-dev prometheus python3-yaml systemd python3-systemd gunicorn"
missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "setup: installing$missing"
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: run me as root (or install:$missing)" >&2
		exit 1
	fi
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi
# strict_permissions (on by default) refuses plugins in directories others
# may write to: the checkout, build/ and its plugins (what conf.d/ loads)
# must not be group-writable, whatever umask the caller has (002 is common
# for users with a group of their own).
umask 022
cmake -S . -B build ${WARD_CMAKE_FLAGS:-}
cmake --build build -j "$(nproc)"
chmod go-w .
chmod -R go-w build
