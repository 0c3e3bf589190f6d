#!/bin/sh
# `make demo`: install what is missing, build, then run a real three-node Patroni
# cluster with PgBouncer, happac and HAProxy on loopback (demo/demo.py).
# Needs root (it installs packages and runs the services as `postgres`).
set -eu
cd "$(dirname "$0")/.."

echo "==> checking Debian packages"
if [ -x scripts/deps.sh ]; then
	scripts/deps.sh --check || scripts/deps.sh
else
	for cmd in patroni etcd pgbouncer haproxy setpriv /usr/lib/postgresql/15/bin/postgres; do
		command -v "$cmd" >/dev/null 2>&1 || { echo "missing: $cmd" >&2; exit 1; }
	done
fi

echo "==> building happac"
make --no-print-directory build

echo "==> running the demo"
exec /usr/bin/python3 demo/demo.py
