#!/bin/sh
# Install (or, with --check, only look for) the Debian packages that building
# and testing happac need. Idempotent; `make test` calls it when something is
# missing, so a fresh Debian 12 machine needs nothing else.
set -eu

PACKAGES="build-essential pkg-config clang libclang-rt-14-dev
libevent-dev libcurl4-openssl-dev libpq-dev libcmocka-dev
python3 python3-pytest python3-psycopg2 python3-yaml python3-psutil
postgresql-15 pgbouncer patroni etcd-server etcd-client haproxy socat
prometheus openssl procps iproute2 systemd groff-base man-db valgrind
debhelper lintian dpkg-dev debootstrap systemd-container"

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
		|| missing="$missing $p"
done

if [ "${1:-}" = "--check" ]; then
	[ -z "$missing" ] && exit 0
	echo "missing Debian packages:$missing" >&2
	exit 1
fi
[ -z "$missing" ] && { echo "deps: all packages present"; exit 0; }
if [ "$(id -u)" != 0 ]; then
	echo "deps: need root to install:$missing (run: sudo $0)" >&2
	exit 1
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
# On a machine that runs systemd, the packages start their default services
# (etcd on 127.0.0.1:2379, PostgreSQL's 15/main, PgBouncer, HAProxy). The
# tests and the demo start their own on private addresses: stop those.
if [ -d /run/systemd/system ]; then
	for unit in etcd pgbouncer haproxy postgresql prometheus; do
		systemctl disable --now "$unit" >/dev/null 2>&1 || true
	done
fi
