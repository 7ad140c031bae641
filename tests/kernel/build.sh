#!/bin/sh
# Build a small lab kernel from Debian's kernel source, with or without
# the unsync-walk patch series.
#
# Usage: build.sh [-k 6.1|newest] [stock|patched]   (default: -k 6.1 patched)
#
#   -k 6.1     linux-source-6.1, the host's (bookworm); series patches/
#   -k newest  the package tests/kernel/newest names (linux-source-7.3 from
#              trixie-backports), fetched through a private apt
#              configuration under the cache; series patches-X.Y/
#   stock      the source as Debian ships it
#   patched    the same source with the series applied, in name order
#   ($KUE_KBUILD_KERNEL sets the default of -k)
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
# Both flavours of one source build in one tree, kept under the cache
# (kbuild/tree-<source key>/, 2.5 to 3 GB): the first build of a source is
# cold, every other flavour applies its series to that tree, rebuilds what
# changed (arch/x86/kvm/mmu/mmu.c and the link) and reverses the series.
# A tree cannot be moved or copied and built incrementally (objtool and
# resolve_btfids record absolute paths), so it stays where it was built.
# A tree left patched by an interrupted build is extracted again.
# KUE_KBUILD_DROP_TREE=1 removes the tree after the build.
#
# Host packages (Debian 12): linux-source-6.1 (installed on demand as
# root), gcc make flex bison bc libelf-dev libssl-dev pahole xz-utils
# patch.

set -eu

# Bump when the way a kernel is built changes (not its inputs): old cache
# entries then stop matching.  (The shared tree of recipe 1 builds the same
# kernels as recipe 1's fresh extracts did.)
RECIPE=1

die() {
	echo "build.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '/^# Usage:/,/^# Both flavours/{/^# Both flavours/d;s/^# \{0,1\}//p}' "$0" >&2
	exit 2
}

kernel=${KUE_KBUILD_KERNEL:-6.1}
if [ "${1:-}" = -k ]; then
	[ $# -ge 2 ] || usage
	kernel=$2
	shift 2
fi
case $kernel in
6.1|newest) ;;
*) echo "build.sh: unknown kernel '$kernel' (6.1 or newest)" >&2; usage ;;
esac
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

cache=${KUE_CACHE:-${HOME:?HOME is not set}/.cache/kvm-unsync-exporter}/kbuild
mkdir -p "$cache"

# linux-source-6.1 from the host's apt, installed on demand as root.
host_source() {
	SRC_PKG=linux-source-6.1
	TARBALL=/usr/src/linux-source-6.1.tar.xz
	series=$here/patches
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
}

# The package tests/kernel/newest names, from its suite through the private
# apt configuration; its tarball is kept under kbuild/source/.
newest_source() {
	suite=$(sed -n 's/^suite \([a-z0-9-]*\)$/\1/p' "$here/newest")
	SRC_PKG=$(sed -n 's/^package \(linux-source-[0-9.]*\)$/\1/p' "$here/newest")
	if [ -z "$suite" ] || [ -z "$SRC_PKG" ]; then
		die "$here/newest names no suite or package"
	fi
	series=$here/patches-${SRC_PKG#linux-source-}
	prog=build.sh
	# shellcheck source=tests/vm/private_apt.sh
	. "$here/../vm/private_apt.sh"
	private_refresh
	version=$(apt_cache policy "$SRC_PKG" 2>/dev/null | sed -n 's/^ *Candidate: \([^ ]*\)$/\1/p')
	case $version in
	'' | '(none)') die "no candidate version of $SRC_PKG in $suite" ;;
	esac
	srcdir=$cache/source/${SRC_PKG}_$version
	TARBALL=$srcdir/$SRC_PKG.tar.xz
	[ -s "$TARBALL" ] && return 0
	mkdir -p "$cache/source"
	dl=$(mktemp -d "$cache/source/.tmp.XXXXXX")
	echo "build.sh: downloading $SRC_PKG $version from $suite" >&2
	# shellcheck disable=SC2086
	(cd "$dl" && apt-get download -q $apt_opts $sandbox "$SRC_PKG=$version" >&2) ||
		{ rm -rf "$dl"; die "apt-get download $SRC_PKG=$version failed"; }
	set -- "$dl"/*.deb
	dpkg-deb --fsys-tarfile "$1" | tar -xO "./usr/src/$SRC_PKG.tar.xz" >"$dl/$SRC_PKG.tar.xz" ||
		{ rm -rf "$dl"; die "no usr/src/$SRC_PKG.tar.xz in $(basename "$1")"; }
	rm -f "$1"
	mv -T "$dl" "$srcdir" 2>/dev/null || rm -rf "$dl"
	[ -s "$TARBALL" ] || die "cannot place $TARBALL"
}

if [ "$kernel" = 6.1 ]; then host_source; else newest_source; fi

patches=
if [ "$flavour" = patched ]; then
	for p in "$series"/*.patch; do
		[ -e "$p" ] || die "no patches in $series (the series is not rebased onto $SRC_PKG)"
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
dir=$cache/$key
if [ -s "$dir/bzImage" ]; then
	echo "$dir/bzImage"
	exit 0
fi

# One build per source tree at a time; a second caller waits and then
# finds its kernel or builds it in the same tree.
tkey=$(key_of)
tree=$cache/tree-$tkey
if command -v flock >/dev/null && [ -z "${KUE_KBUILD_LOCKED:-}" ]; then
	KUE_KBUILD_LOCKED=1 KUE_KBUILD_KERNEL=$kernel exec flock "$cache/.lock-$tkey" "$0" "$@"
fi
if [ -s "$dir/bzImage" ]; then
	echo "$dir/bzImage"
	exit 0
fi

tmp=$cache/.tmp-$key-$$
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$tmp/out"
log=$tmp/build.log
: >"$log"
start=$(date +%s)
src=$tree/src
jobs=$(nproc)
failed_log=$cache/failed-$key.log

kmake() {
	make -C "$src" -j"$jobs" "$@" >>"$log" 2>&1 || {
		cp "$log" "$failed_log"
		tail -n 40 "$log" >&2
		die "make $* failed (log $failed_log)"
	}
}

# A fresh, configured tree: extracted, tinyconfig + the fragment.
new_tree() {
	rm -rf "$tree"
	mkdir -p "$tree/x"
	echo "build.sh: extracting $TARBALL ($version) into $tree" >&2
	tar -xJf "$TARBALL" -C "$tree/x"
	set -- "$tree"/x/*/Makefile
	[ -e "$1" ] || die "no top-level Makefile in $TARBALL"
	mv "$(dirname "$1")" "$src"
	rmdir "$tree/x"
	echo "build.sh: configuring (tinyconfig + ${fragment##*/})" >&2
	kmake tinyconfig
	(cd "$src" && scripts/kconfig/merge_config.sh -m .config "$fragment") >>"$log" 2>&1 || {
		cp "$log" "$failed_log"
		die "merge_config.sh failed (log $failed_log)"
	}
	kmake olddefconfig
	# An option this source does not define at all (7.x folded
	# PROC_SYSCTL into SYSCTL) is noted; one it defines must survive.
	missing=$(sed -n 's/^\(CONFIG_[A-Za-z0-9_]*\)=y$/\1/p' "$fragment" | while read -r opt; do
		grep -qx "$opt=y" "$src/.config" && continue
		if grep -rqx --include='Kconfig*' "config ${opt#CONFIG_}" "$src"; then
			echo "$opt"
		else
			echo "build.sh: $opt: not an option of $SRC_PKG, ignored" >&2
		fi
	done)
	[ -z "$missing" ] || die "options dropped by olddefconfig (missing dependency?): $missing"
	touch "$tree/.configured"
}

# The tree is stock while .patched is absent; a build that dies with the
# series applied leaves .patched behind and the next build extracts again.
if [ ! -e "$tree/.configured" ] || [ -e "$tree/.patched" ]; then
	new_tree
fi
if [ -n "$patches" ]; then
	touch "$tree/.patched"
	for p in $patches; do
		echo "build.sh: applying ${p##*/}" >&2
		patch -d "$src" -p1 -F0 -N -s --no-backup-if-mismatch <"$p" ||
			die "${p##*/} does not apply"
	done
fi

echo "build.sh: $flavour: make -j$jobs bzImage (log $dir/build.log)" >&2
kmake bzImage
end=$(date +%s)
cp "$src/arch/x86/boot/bzImage" "$src/vmlinux" "$src/System.map" "$tmp/out/"
cp "$src/.config" "$tmp/out/config"

# Back to stock: the series reversed, last patch first.  The files it
# touched are newer than their objects, so the next build recompiles them.
if [ -n "$patches" ]; then
	# shellcheck disable=SC2086
	for p in $(printf '%s\n' $patches | sort -r); do
		patch -d "$src" -p1 -R -F0 -s --no-backup-if-mismatch <"$p" ||
			die "${p##*/} does not reverse"
	done
	rm -f "$tree/.patched"
fi

mv "$log" "$tmp/out/build.log"
{
	echo "flavour=$flavour"
	echo "kernel=$kernel"
	echo "source=$SRC_PKG $version"
	echo "seconds=$((end - start))"
	echo "nproc=$(nproc)"
	for p in $patches; do echo "patch=${p##*/}"; done
} >"$tmp/out/build.info"
[ "${KUE_KBUILD_DROP_TREE:-0}" != 1 ] || rm -rf "$tree"
rm -rf "$dir"
mv "$tmp/out" "$dir"
echo "build.sh: $flavour kernel built in $((end - start)) s: $dir" >&2
echo "$dir/bzImage"
