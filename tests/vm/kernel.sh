#!/bin/sh
# Fetch and unpack Debian's current stock kernel image for the VM lab.
#
# Usage: kernel.sh [-s SUITE] [PACKAGE]
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
# -s SUITE (or $KUE_KERNEL_SUITE) takes the image from another Debian suite
# (trixie, sid) through a private apt configuration under the cache
# (kernel/apt/<suite>/: its own sources.list, lists and package cache;
# private_apt.sh, shared with tests/model/kernel_source.sh), on
# the mirror the host's own sources name.  The host's sources and package
# cache are never touched: a host that saw trixie or sid would upgrade
# itself from them.  sid splits the image into linux-binary-* (vmlinuz
# under usr/lib/modules/<release>/) and linux-modules-*: every linux-*
# package the image depends on is unpacked into the same tree.
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

suite=${KUE_KERNEL_SUITE:-}
if [ "${1:-}" = -s ]; then
	[ $# -ge 2 ] || die "-s needs a suite (trixie, sid)"
	suite=$2
	shift 2
fi
case $suite in
'' | stock) suite= ;;
*[!a-z0-9-]*) die "bad suite name '$suite': a Debian suite such as trixie or sid" ;;
esac

prog=kernel.sh
# shellcheck source=tests/vm/private_apt.sh
. "$(dirname "$0")/private_apt.sh"

# The metapackage's first dependency on a linux-image-* package is the image.
resolve_pkg() {
	apt_cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *|\{0,1\}Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1
}

# The image and the linux-binary-*/linux-modules-* packages it depends on.
image_pkgs() {
	echo "$1"
	apt_cache depends "$1" 2>/dev/null |
		sed -n 's/^ *|\{0,1\}Depends: \(linux-\(binary\|modules\)-[^ ]*\)$/\1/p'
}

pkg=${1:-${KUE_KERNEL_PKG:-}}
[ -n "$pkg" ] || private_refresh
if [ -z "$pkg" ]; then
	pkg=$(resolve_pkg)
	if [ -z "$pkg" ]; then
		empty_cache_update linux-image-amd64
		pkg=$(resolve_pkg)
	fi
	[ -n "$pkg" ] || die "cannot resolve linux-image-amd64 to an image package"
fi

dir=$cache/${suite:+$suite/}$pkg
if [ ! -e "$dir/.unpacked" ]; then
	command -v apt-get >/dev/null || die "apt-get not found"
	command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
	mkdir -p "$cache" "$(dirname "$dir")"
	# Download and unpack beside the final place, then rename: an
	# interrupted or concurrent run never leaves a half-unpacked tree.
	tmp=$(mktemp -d "$cache/.tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	pkgs=$(image_pkgs "$pkg")
	echo "kernel.sh: downloading" $pkgs >&2
	# shellcheck disable=SC2086
	(cd "$tmp" && apt-get download -q $apt_opts $sandbox $pkgs >&2) ||
		die "apt-get download $pkgs failed"
	set -- "$tmp"/*.deb
	[ -e "$1" ] || die "apt-get download left no .deb"
	for deb; do
		echo "kernel.sh: unpacking $(basename "$deb")" >&2
		dpkg-deb -x "$deb" "$tmp/root" || die "dpkg-deb -x $deb failed"
		rm -f "$deb"
	done
	touch "$tmp/root/.unpacked"
	if ! mv -T "$tmp/root" "$dir" 2>/dev/null; then
		# Another run won the race; its tree is as good as ours.
		[ -e "$dir/.unpacked" ] || die "cannot move the unpacked tree to $dir"
	fi
	rm -rf "$tmp"
	trap - EXIT
fi

# boot/vmlinuz-REL (bookworm, trixie) or usr/lib/modules/REL/vmlinuz (sid).
set -- "$dir"/boot/vmlinuz-* "$dir"/usr/lib/modules/*/vmlinuz
for vmlinuz; do
	[ -e "$vmlinuz" ] && break
done
[ -e "$vmlinuz" ] || die "no boot/vmlinuz-* or usr/lib/modules/*/vmlinuz in $dir"
case $vmlinuz in
*/boot/vmlinuz-*) release=${vmlinuz##*/vmlinuz-} ;;
*) release=${vmlinuz%/vmlinuz}; release=${release##*/} ;;
esac
modules=$dir/lib/modules/$release
[ -d "$modules" ] || modules=$dir/usr/lib/modules/$release
[ -d "$modules/kernel" ] || die "no modules directory lib/modules/$release or usr/lib/modules/$release in $dir"
config=$dir/boot/config-$release
[ -e "$config" ] || config=$modules/config

echo "KUE_KERNEL_PKG=$pkg"
echo "KUE_KERNEL_RELEASE=$release"
echo "KUE_KERNEL_VMLINUZ=$vmlinuz"
echo "KUE_KERNEL_MODULES=$modules"
echo "KUE_KERNEL_CONFIG=$config"
echo "KUE_KERNEL_SUITE=${suite:-stock}"
