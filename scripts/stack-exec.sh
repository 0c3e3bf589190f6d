#!/bin/sh
# Run one program of a test stack chrooted in its Debian root:
#
#   scripts/stack-exec.sh ROOT DIR[:DIR...] -- PROGRAM [ARG...]
#
# The program gets a mount namespace of its own (unshare --mount, private
# propagation) in which ROOT/proc, an rbind of /dev and a bind of each DIR at
# the same path inside ROOT are mounted; then it is exec'ed with chroot ROOT.
# The mounts live exactly as long as the last process in that namespace (the
# program and whatever it forks, e.g. Patroni's PostgreSQL): nothing is ever
# mounted in the host's namespace, so a failed or interrupted run, even a
# SIGKILLed test driver, cannot leave a mount behind.
#
# Every step is an exec, so the pid the caller started is the program's pid
# (its process group, its parent-death signal, its exit status).
set -eu

die() { echo "stack-exec: $*" >&2; exit 127; }

if [ "${1-}" != --inside ]; then
	[ $# -ge 4 ] && [ "$3" = -- ] || die "usage: $0 ROOT DIR[:DIR...] -- PROGRAM [ARG...]"
	[ -x "$1/usr/sbin/chroot" ] || die "$1 is not a stack root (no usr/sbin/chroot in it)"
	exec unshare --mount --propagation private -- "$0" --inside "$@"
fi
shift
root=$1 dirs=$2
shift 3

mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
old_ifs=$IFS
IFS=:
for d in $dirs; do
	[ -n "$d" ] || continue
	mkdir -p "$root$d"
	mount --bind "$d" "$root$d"
done
IFS=$old_ifs
exec chroot "$root" "$@"
