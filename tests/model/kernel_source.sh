#!/bin/sh
# Fetch the parts of Debian's kernel source the model is written from.
#
# Usage: kernel_source.sh [-s SUITE]
#
# SUITE is the host's own suite (default; bookworm: linux-source-6.1),
# trixie (linux-source-6.12), sid (linux-source-7.2) or trixie-backports
# (linux-source-7.3, the newest Debian ships): the
# package the suite's linux-source metapackage depends on.  Its .deb is
# downloaded with apt-get download (a suite other than the host's through
# the private apt configuration of tests/vm/private_apt.sh, never the
# host's sources), and only the files the model reads are unpacked:
#
#   ${KUE_CACHE:-$HOME/.cache/kvm-unsync-exporter}/source/<suite>/<pkg>_<version>/
#
# with source/<suite>/current pointing at the newest one.  Nothing is
# installed on the host.  A warm run only asks apt-cache which version is
# current and finds it unpacked.
#
# Prints the directory (the top of the kernel tree) on stdout; progress and
# errors go to stderr.

set -eu

die() {
	echo "kernel_source.sh: $*" >&2
	exit 1
}

# What the model and its tests read (tests/model/README.md, "Kernels").
# All of arch/x86/kvm (under 10 MB): the assumptions of kvm_shapes.py cite
# x86.c, svm/ and the MMU, and files move between releases.
FILES="Makefile arch/x86/kvm arch/x86/include/asm/kvm_host.h
	include/linux/kvm_host.h virt/kvm mm/mmap.c"

# shellcheck disable=SC1091
host_suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
suite=$host_suite
if [ "${1:-}" = -s ]; then
	[ $# -ge 2 ] || die "-s needs a suite (bookworm, trixie, sid)"
	suite=$2
	shift 2
fi
[ $# -eq 0 ] || die "usage: kernel_source.sh [-s SUITE]"
case $suite in
'') die "cannot tell the host's suite (no VERSION_CODENAME in /etc/os-release); use -s" ;;
*[!a-z0-9-]*) die "bad suite name '$suite': a Debian suite such as bookworm, trixie or sid" ;;
esac
dir_suite=$suite
# The host's own suite goes through the host's apt.
[ "$suite" != "$host_suite" ] || suite=

prog=kernel_source.sh
# shellcheck source=tests/vm/private_apt.sh
. "$(dirname "$0")/../vm/private_apt.sh"

cache=${KUE_CACHE:-${HOME:?HOME is not set}/.cache/kvm-unsync-exporter}/source/$dir_suite

# The metapackage's dependency on linux-source-X.Y, and that package's version.
resolve_pkg() {
	apt_cache depends linux-source 2>/dev/null |
		sed -n 's/^ *|\{0,1\}Depends: \(linux-source-[0-9][^ ]*\)$/\1/p' | head -n 1
}
pkg_version() {
	apt_cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: \([^ ]*\)$/\1/p'
}

private_refresh
pkg=$(resolve_pkg)
if [ -z "$pkg" ]; then
	empty_cache_update linux-source
	pkg=$(resolve_pkg)
fi
[ -n "$pkg" ] || die "cannot resolve linux-source to a linux-source-X.Y package"
version=$(pkg_version "$pkg")
case $version in
'' | '(none)') die "no candidate version of $pkg" ;;
esac

dir=$cache/${pkg}_$version
if [ ! -e "$dir/.unpacked" ]; then
	command -v apt-get >/dev/null || die "apt-get not found"
	command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
	mkdir -p "$cache"
	# Unpack beside the final place, then rename: an interrupted or
	# concurrent run never leaves a half-unpacked tree.
	tmp=$(mktemp -d "$cache/.tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "kernel_source.sh: downloading $pkg $version" >&2
	# shellcheck disable=SC2086
	(cd "$tmp" && apt-get download -q $apt_opts $sandbox "$pkg=$version" >&2) ||
		die "apt-get download $pkg=$version failed"
	set -- "$tmp"/*.deb
	[ -e "$1" ] || die "apt-get download left no .deb"
	# The .deb holds usr/src/linux-source-X.Y.tar.xz, whose top directory
	# is linux-source-X.Y/: stream it and keep only $FILES.
	top=${pkg#linux-source-}
	top=linux-source-$top
	members=
	for f in $FILES; do
		members="$members $top/$f"
	done
	echo "kernel_source.sh: unpacking$members" >&2
	mkdir "$tmp/root"
	# shellcheck disable=SC2086
	dpkg-deb --fsys-tarfile "$1" | tar -xO "./usr/src/$top.tar.xz" |
		tar -xJ -C "$tmp/root" --strip-components=1 $members ||
		die "cannot unpack$members from $(basename "$1")"
	rm -f "$1"
	[ -e "$tmp/root/arch/x86/kvm/mmu/mmu.c" ] || die "no arch/x86/kvm/mmu/mmu.c in $pkg"
	echo "$pkg $version" >"$tmp/root/.unpacked"
	if ! mv -T "$tmp/root" "$dir" 2>/dev/null; then
		# Another run won the race; its tree is as good as ours.
		[ -e "$dir/.unpacked" ] || die "cannot move the unpacked tree to $dir"
	fi
	rm -rf "$tmp"
	trap - EXIT
fi
ln -sfn "$(basename "$dir")" "$cache/current"
echo "$dir"
