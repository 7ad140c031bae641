#!/bin/sh
# Build a small lab kernel from Debian's linux-source-6.1, with or without
# the unsync-walk patch series.
#
# Usage: build.sh [stock|patched]        (default: patched)
#
#   stock    the source as Debian ships it
#   patched  the same source with tests/kernel/patches/*.patch applied, in
#            name order
#
# Both flavours use the same configuration: `make tinyconfig`, then the
# fragment tests/kernel/lab.config merged over it, then olddefconfig.  Every
# "=y" line of the fragment must survive; a dropped option fails the build.
# KVM and kvm-amd are built in (boot with kvm_amd.npt=0 for shadow paging),
# vmlinux carries BTF.
#
# The result is cached outside the repository in
#   ${KUE_CACHE:-$HOME/.cache/kvm-unsync-exporter}/kbuild/<key>/
# keyed by the source package's version, the config fragment, the patch
# files (names and contents) and this script's recipe number (sha256).  A
# warm run costs a few hashes.  On success the bzImage path is the only line
# on stdout; progress goes to stderr, the full make log to <key>/build.log.
#
# Every build starts from a fresh extract: a tree copied or moved from
# another directory cannot be built incrementally (objtool and
# resolve_btfids record absolute paths, are rebuilt, and with them every
# object).  KUE_KBUILD_KEEP_TREE=1 keeps the build tree under <key>/src
# (2.4 GB) for debugging; by default only bzImage, vmlinux (with BTF),
# config, System.map, build.log and build.info stay.
#
# Host packages (Debian 12): linux-source-6.1 (installed on demand as
# root), gcc make flex bison bc libelf-dev libssl-dev pahole xz-utils
# patch.

set -eu

# Bump when the way a kernel is built changes (not its inputs): old cache
# entries then stop matching.
RECIPE=1
SRC_PKG=linux-source-6.1
TARBALL=/usr/src/linux-source-6.1.tar.xz

die() {
	echo "build.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '/^# Usage:/,/^# Both flavours/{/^# Both flavours/d;s/^# \{0,1\}//p}' "$0" >&2
	exit 2
}

flavour=${1:-patched}
case $flavour in
stock|patched) ;;
-h|--help) usage ;;
*) echo "build.sh: unknown flavour '$flavour'" >&2; usage ;;
esac
[ $# -le 1 ] || usage

here=$(cd "$(dirname "$0")" && pwd)
fragment=$here/lab.config
[ -r "$fragment" ] || die "cannot read $fragment"

for tool in make gcc flex bison bc pahole sha256sum patch xz; do
	command -v $tool >/dev/null || die "$tool not found (see the host packages in $0)"
done

if [ ! -r "$TARBALL" ]; then
	[ "$(id -u)" -eq 0 ] || die "$TARBALL missing; apt-get install $SRC_PKG as root"
	echo "build.sh: installing $SRC_PKG" >&2
	apt-get install -y -q "$SRC_PKG" >&2 || {
		apt-get update -qq >&2 && apt-get install -y -q "$SRC_PKG" >&2
	} || die "apt-get install $SRC_PKG failed"
	[ -r "$TARBALL" ] || die "$SRC_PKG installed but $TARBALL is missing"
fi
version=$(dpkg-query -W -f '${Version}' "$SRC_PKG" 2>/dev/null) ||
	die "cannot read the version of $SRC_PKG"

patches=
if [ "$flavour" = patched ]; then
	for p in "$here"/patches/*.patch; do
		[ -e "$p" ] || die "no patches in $here/patches"
		patches="$patches $p"
	done
fi

# The key: everything that decides what comes out.
key_of() { # PATCHES...
	{
		echo "recipe $RECIPE"
		echo "source $SRC_PKG $version"
		cat "$fragment"
		for p in "$@"; do
			echo "patch ${p##*/}"
			cat "$p"
		done
	} | sha256sum | cut -c1-16
}
# shellcheck disable=SC2086
key=$(key_of $patches)
cache=${KUE_CACHE:-${HOME:?HOME is not set}/.cache/kvm-unsync-exporter}/kbuild
dir=$cache/$key
if [ -s "$dir/bzImage" ]; then
	echo "$dir/bzImage"
	exit 0
fi

mkdir -p "$cache"
# One build per key at a time; a second caller waits and then finds it.
if command -v flock >/dev/null && [ -z "${KUE_KBUILD_LOCKED:-}" ]; then
	KUE_KBUILD_LOCKED=1 exec flock "$cache/.lock-$key" "$0" "$@"
fi
if [ -s "$dir/bzImage" ]; then
	echo "$dir/bzImage"
	exit 0
fi

tmp=$cache/.tmp-$key-$$
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$tmp"
log=$tmp/build.log
start=$(date +%s)

echo "build.sh: $flavour: extracting $TARBALL ($version)" >&2
mkdir -p "$tmp/x"
tar -xJf "$TARBALL" -C "$tmp/x"
set -- "$tmp"/x/*/Makefile
[ -e "$1" ] || die "no top-level Makefile in $TARBALL"
mv "$(dirname "$1")" "$tmp/src"
rmdir "$tmp/x"
src=$tmp/src

for p in $patches; do
	echo "build.sh: applying ${p##*/}" >&2
	patch -d "$src" -p1 -F0 -N -s --no-backup-if-mismatch <"$p" ||
		die "${p##*/} does not apply"
done

jobs=$(nproc)
failed_log=$cache/failed-$key.log

kmake() {
	make -C "$src" -j"$jobs" "$@" >>"$log" 2>&1 || {
		cp "$log" "$failed_log"
		tail -n 40 "$log" >&2
		die "make $* failed (log $failed_log)"
	}
}

echo "build.sh: configuring (tinyconfig + ${fragment##*/})" >&2
kmake tinyconfig
(cd "$src" && scripts/kconfig/merge_config.sh -m .config "$fragment") >>"$log" 2>&1 || {
	cp "$log" "$failed_log"
	die "merge_config.sh failed (log $failed_log)"
}
kmake olddefconfig
missing=$(sed -n 's/^\(CONFIG_[A-Za-z0-9_]*\)=y$/\1/p' "$fragment" | while read -r opt; do
	grep -qx "$opt=y" "$src/.config" || echo "$opt"
done)
[ -z "$missing" ] || die "options dropped by olddefconfig (missing dependency?): $missing"

echo "build.sh: make -j$jobs bzImage (log $dir/build.log)" >&2
kmake bzImage

end=$(date +%s)
mkdir -p "$tmp/out"
cp "$src/arch/x86/boot/bzImage" "$src/vmlinux" "$src/System.map" "$tmp/out/"
cp "$src/.config" "$tmp/out/config"
mv "$log" "$tmp/out/build.log"
{
	echo "flavour=$flavour"
	echo "source=$SRC_PKG $version"
	echo "seconds=$((end - start))"
	echo "nproc=$(nproc)"
	for p in $patches; do echo "patch=${p##*/}"; done
} >"$tmp/out/build.info"
if [ "${KUE_KBUILD_KEEP_TREE:-0}" = 1 ]; then
	mv "$src" "$tmp/out/src"
fi
rm -rf "$dir"
mv "$tmp/out" "$dir"
echo "build.sh: $flavour kernel built in $((end - start)) s: $dir" >&2
echo "$dir/bzImage"
