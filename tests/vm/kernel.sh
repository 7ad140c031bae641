#!/bin/sh
# Fetch and unpack Debian's current stock kernel image for the VM lab.
#
# Usage: kernel.sh [PACKAGE]
#
# Resolves the image behind the linux-image-amd64 metapackage (the ABI
# number moves with every security update, so it is never hard-coded),
# downloads the .deb with apt-get download and unpacks it with dpkg-deb -x
# into a cache directory outside the repository:
#
#   ${KUE_CACHE:-$HOME/.cache/kvm-unsync-exporter}/kernel/<package>/
#
# Nothing is installed on the host.  A warm run only asks apt-cache which
# package is current and finds it already unpacked.  PACKAGE (or
# $KUE_KERNEL_PKG) pins a package name instead of resolving the metapackage.
#
# Output on stdout, shell-sourceable (eval "$(tests/vm/kernel.sh)"):
#   KUE_KERNEL_PKG=linux-image-6.1.0-56-amd64
#   KUE_KERNEL_RELEASE=6.1.0-56-amd64
#   KUE_KERNEL_VMLINUZ=/.../boot/vmlinuz-6.1.0-56-amd64
#   KUE_KERNEL_MODULES=/.../lib/modules/6.1.0-56-amd64
#   KUE_KERNEL_CONFIG=/.../boot/config-6.1.0-56-amd64
# Progress and errors go to stderr.

set -eu

die() {
	echo "kernel.sh: $*" >&2
	exit 1
}

cache=${KUE_CACHE:-${HOME:?HOME is not set}/.cache/kvm-unsync-exporter}/kernel

# The metapackage's first dependency on a linux-image-* package is the image.
resolve_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *|\{0,1\}Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1
}

pkg=${1:-${KUE_KERNEL_PKG:-}}
if [ -z "$pkg" ]; then
	pkg=$(resolve_pkg)
	if [ -z "$pkg" ]; then
		# A fresh machine (CI) may have an empty package cache.
		[ "$(id -u)" -eq 0 ] || die "apt-cache knows no linux-image-amd64; run apt-get update as root"
		echo "kernel.sh: package cache empty, running apt-get update" >&2
		apt-get update -qq >&2 || die "apt-get update failed"
		pkg=$(resolve_pkg)
	fi
	[ -n "$pkg" ] || die "cannot resolve linux-image-amd64 to an image package"
fi

dir=$cache/$pkg
if [ ! -e "$dir/.unpacked" ]; then
	command -v apt-get >/dev/null || die "apt-get not found"
	command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
	mkdir -p "$cache"
	# Download and unpack beside the final place, then rename: an
	# interrupted or concurrent run never leaves a half-unpacked tree.
	tmp=$(mktemp -d "$cache/.tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "kernel.sh: downloading $pkg" >&2
	# As root, apt drops to user _apt to download, which cannot write
	# into a private temporary directory; there is nothing to drop to.
	sandbox=
	[ "$(id -u)" -ne 0 ] || sandbox="-o APT::Sandbox::User=root"
	# shellcheck disable=SC2086
	(cd "$tmp" && apt-get download -q $sandbox "$pkg" >&2) ||
		die "apt-get download $pkg failed"
	set -- "$tmp"/*.deb
	deb=$1
	[ -e "$deb" ] || die "apt-get download left no .deb"
	echo "kernel.sh: unpacking $(basename "$deb")" >&2
	dpkg-deb -x "$deb" "$tmp/root" || die "dpkg-deb -x failed"
	rm -f "$deb"
	touch "$tmp/root/.unpacked"
	if ! mv -T "$tmp/root" "$dir" 2>/dev/null; then
		# Another run won the race; its tree is as good as ours.
		[ -e "$dir/.unpacked" ] || die "cannot move the unpacked tree to $dir"
	fi
	rm -rf "$tmp"
	trap - EXIT
fi

set -- "$dir"/boot/vmlinuz-*
vmlinuz=$1
[ -e "$vmlinuz" ] || die "no boot/vmlinuz-* in $dir"
release=${vmlinuz##*/vmlinuz-}
modules=$dir/lib/modules/$release
[ -d "$modules" ] || die "no modules directory $modules"

echo "KUE_KERNEL_PKG=$pkg"
echo "KUE_KERNEL_RELEASE=$release"
echo "KUE_KERNEL_VMLINUZ=$vmlinuz"
echo "KUE_KERNEL_MODULES=$modules"
echo "KUE_KERNEL_CONFIG=$dir/boot/config-$release"
