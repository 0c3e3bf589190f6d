#!/bin/sh
# Build (or reuse) a Debian root for the tests: the Debian 13 stack
# (tests/cluster STACK=debian13) and the booted systemd container
# (tests/systemd) run their programs from such roots.
#
#   scripts/rootfs.sh DIR SUITE PACKAGE[,PACKAGE...]
#
# The root is built with debootstrap --variant=minbase from the archive this
# machine's apt already uses (read from its sources at run time, so no host
# name is written anywhere), and reused while DIR/.happac-rootfs still names
# the same suite, archive and package list. A failed build leaves no root
# behind and prints one line that says why; the exit code is then 1.
set -eu

die() { echo "rootfs: $*" >&2; exit 1; }

[ $# -eq 3 ] || die "usage: $0 DIR SUITE PACKAGE[,PACKAGE...]"
dir=$1 suite=$2 pkgs=$3

# The first Debian archive in apt's sources: deb822 files first (Debian 12's
# default), then the one-line format. Security archives are skipped.
mirror() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f"
	done | head -n 1
}
mirror_line() {
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /security/) { print $i; exit } else break } }' "$f"
	done | head -n 1
}
archive=$(mirror)
[ -n "$archive" ] || archive=$(mirror_line)
[ -n "$archive" ] || die "no Debian archive found in /etc/apt/sources.list or /etc/apt/sources.list.d"

command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (apt-get install debootstrap)"
[ "$(id -u)" = 0 ] || die "building a root needs root (debootstrap, chroot)"

stamp="suite=$suite archive=$archive packages=$pkgs"
if [ -f "$dir/.happac-rootfs" ] && [ "$(cat "$dir/.happac-rootfs")" = "$stamp" ]; then
	exit 0
fi

# Never delete a root that still has something mounted in it (a bind mount
# of /dev or of a lab directory would be deleted through).
for d in "$dir" "$dir.new"; do
	if awk -v d="$(realpath -m "$d")/" 'index($2 "/", d) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
		die "$d still has mounts (see /proc/mounts): unmount them first"
	fi
done

# Build into a sibling directory and rename, so an interrupted build never
# leaves a half root that a later run would take for a good one.
tmp="$dir.new"
rm -rf "$tmp"
mkdir -p "$(dirname "$dir")"
log="$dir.debootstrap.log"
echo "rootfs: building $suite in $dir (debootstrap, about a minute)" >&2
if ! debootstrap --variant=minbase --include="$pkgs" "$suite" "$tmp" "$archive" >"$log" 2>&1; then
	rm -rf "$tmp"
	die "debootstrap $suite failed: $(tail -n 1 "$log") (full log: $log)"
fi
echo "$stamp" >"$tmp/.happac-rootfs"
rm -rf "$dir"
mv "$tmp" "$dir"
