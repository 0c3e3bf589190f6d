#!/bin/sh
# Make a test stack ready for tests/cluster (make test-cluster STACK=...):
#
#   scripts/stack-prepare.sh STACK
#
# debian12: the host's own packages (scripts/deps.sh); nothing to do.
# debian13: a Debian 13 root in build/stack/debian13 (scripts/rootfs.sh:
#   built once, reused while the package list below is unchanged), whose
#   postgres and haproxy users and groups then get the host's ids, so that
#   files in the lab directory, which both sides share, mean the same owner
#   on both sides. Idempotent: a second run changes nothing; an interrupted
#   run is finished by the next one (files are re-owned before the id is
#   written, and re-owning is by the old id).
set -eu
cd "$(dirname "$0")/.."

die() { echo "stack-prepare: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 debian12|debian13"
stack=$1

case $stack in
debian12)
	exit 0
	;;
debian13)
	suite=trixie
	pkgs=patroni,pgbouncer,haproxy,postgresql-17,etcd-server,etcd-client,python3-psycopg2,procps,iproute2,curl,socat,ca-certificates
	;;
*)
	die "unknown stack '$stack' (debian12 or debian13)"
	;;
esac

root=build/stack/$stack
scripts/rootfs.sh "$root" "$suite" "$pkgs"

# field 3 of NAME's line in ROOT's passwd or group file
root_id() { awk -F: -v n="$2" '$1 == n { print $3 }' "$root/etc/$1"; }
# the name holding ID in ROOT's passwd or group file, other than NAME
root_holder() { awk -F: -v i="$2" -v n="$3" '$3 == i && $1 != n { print $1 }' "$root/etc/$1"; }
# an id below 1000 that neither ROOT nor the host uses, from 999 down
free_id() {
	i=999
	while [ "$i" -gt 100 ]; do
		if [ -z "$(root_holder "$1" "$i" "")" ] && ! getent "$1" "$i" >/dev/null; then
			echo "$i"
			return
		fi
		i=$((i - 1))
	done
	die "no free id below 1000 in $root/etc/$1"
}

# Give NAME the id NEW in ROOT (file: passwd or group): its files first.
renumber() {
	file=$1 name=$2 new=$3
	old=$(root_id "$file" "$name")
	[ -n "$old" ] || die "$root has no $name in /etc/$file"
	[ "$old" = "$new" ] && return
	if [ "$file" = passwd ]; then
		find "$root" -xdev -uid "$old" -exec chown -h "$new" {} +
	else
		find "$root" -xdev -gid "$old" -exec chgrp -h "$new" {} +
	fi
	awk -F: -v OFS=: -v n="$name" -v i="$new" '$1 == n { $3 = i } { print }' \
		"$root/etc/$file" >"$root/etc/$file.happac" && mv "$root/etc/$file.happac" "$root/etc/$file"
	if [ "$file" = group ]; then # primary groups in passwd follow
		awk -F: -v OFS=: -v o="$old" -v i="$new" '$4 == o { $4 = i } { print }' \
			"$root/etc/passwd" >"$root/etc/passwd.happac" &&
			mv "$root/etc/passwd.happac" "$root/etc/passwd"
	fi
}

for user in postgres haproxy; do
	uid=$(id -u "$user" 2>/dev/null) || die "the host has no user $user (scripts/deps.sh installs it)"
	gid=$(getent group "$user" | cut -d: -f3)
	[ -n "$gid" ] || die "the host has no group $user"
	for spec in "group $gid" "passwd $uid"; do
		set -- $spec
		other=$(root_holder "$1" "$2" "$user")
		[ -z "$other" ] || renumber "$1" "$other" "$(free_id "$1")"
		renumber "$1" "$user" "$2"
	done
done
