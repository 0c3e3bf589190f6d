#!/bin/sh
# Build the Debian package with Debian's own tools (dpkg-buildpackage and
# debhelper, from debian/), then check it with lintian.
#
#   scripts/deb.sh              -> build/deb/happac_VERSION_ARCH.deb (+ .changes,
#                                  .buildinfo, and .build: the build log)
#   DEB_OUT=DIR scripts/deb.sh  -> the same files in DIR
#   scripts/deb.sh --no-lintian    skip the lintian step
#
# The build runs in a scratch copy of the source tree, so it neither cleans
# nor overwrites a developer's build/ and bin/, and leaves nothing behind in
# the tree (dpkg-buildpackage writes its results next to the source).
# Needs the Debian packages: dpkg-dev debhelper lintian, plus the
# Build-Depends of debian/control (`make deps` installs the build ones).
set -eu

cd "$(dirname "$0")/.."
top=$(pwd)
out=${DEB_OUT:-$top/build/deb}
lint=1
for arg in "$@"; do
	case "$arg" in
	--no-lintian) lint=0 ;;
	-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "deb.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
	esac
done

missing=""
for tool in dpkg-buildpackage:dpkg-dev dpkg-checkbuilddeps:dpkg-dev dh:debhelper; do
	command -v "${tool%%:*}" >/dev/null 2>&1 || missing="$missing ${tool#*:}"
done
[ "$lint" = 0 ] || command -v lintian >/dev/null 2>&1 || missing="$missing lintian"
if [ -n "$missing" ]; then
	echo "deb.sh: missing Debian packages:$missing (apt-get install$missing)" >&2
	exit 1
fi

# One version: the Makefile's is what happac --version prints.
make_version=$(sed -n 's/^VERSION *:= *//p' Makefile)
deb_version=$(dpkg-parsechangelog -S Version)
if [ "$make_version" != "${deb_version%-*}" ]; then
	echo "deb.sh: Makefile VERSION $make_version but debian/changelog $deb_version:" \
	     "add a changelog entry (dch -v $make_version)" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/happac-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
src=$work/happac-$make_version
mkdir "$src"
# The sources as git sees them (tracked and new, not ignored), or, outside a
# git checkout, everything but build output.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# (--cached also lists tracked files deleted in the work tree: skip those.)
	# shellcheck disable=SC2016 # $f is expanded by the inner sh
	git ls-files -z --cached --others --exclude-standard |
		xargs -0 sh -c 'for f; do if [ -e "$f" ]; then printf "%s\0" "$f"; fi; done' sh |
		tar --null -T - -cf - | tar -xf - -C "$src"
else
	tar --exclude=./build --exclude=./bin --exclude=./.git --exclude=__pycache__ \
	    --exclude=.pytest_cache -cf - . | tar -xf - -C "$src"
fi

(cd "$src" && dpkg-checkbuilddeps && dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1 || {
	tail -n 60 "$work/build.log" >&2
	echo "deb.sh: dpkg-buildpackage failed (last lines above)" >&2
	exit 1
}

mkdir -p "$out"
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
base=happac_${deb_version}_$arch
for f in "$base.deb" "$base.changes" "$base.buildinfo"; do
	mv -f "$work/$f" "$out/$f"
done
mv -f "$work/build.log" "$out/$base.build"
if [ "$lint" = 1 ]; then
	# Errors fail the build; warnings and notes are shown.
	lintian --fail-on error --no-tag-display-limit "$out/$base.changes"
fi
echo "$out/$base.deb"
