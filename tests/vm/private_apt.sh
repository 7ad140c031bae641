# shellcheck shell=sh
# apt for another Debian suite, sourced by tests/vm/kernel.sh and
# tests/model/kernel_source.sh.
#
# A suite other than the host's own (trixie, sid) is reached through a
# private apt configuration under the cache,
#
#   ${KUE_CACHE:-$HOME/.cache/kvm-unsync-exporter}/kernel/apt/<suite>/
#
# (its own sources.list, lists and package cache), on the mirror the
# host's own sources name.  The host's sources and package cache are never
# touched: a host that saw trixie or sid would upgrade itself from them.
#
# The caller defines die() and sets $prog (its name, for messages) and
# $suite (empty: the host's own apt) before sourcing this file.  It gets
# $apt_opts and $sandbox for its apt-get calls, apt_cache(),
# private_refresh() to bring the private lists up to date, and
# empty_cache_update() for a package cache that knows nothing yet.

: "${prog:?set prog before sourcing private_apt.sh}" "${suite?set suite before sourcing private_apt.sh}"

apt_root=${KUE_CACHE:-${HOME:?HOME is not set}/.cache/kvm-unsync-exporter}/kernel

# The mirror of the host's own Debian sources (one-line or deb822 format).
host_mirror() {
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources 2>/dev/null |
		sed -n -e 's|^deb \(\[[^]]*\] \)\{0,1\}\(https\{0,1\}://[^ ]*/debian\)/\{0,1\} .*|\2|p' \
			-e 's|^URIs: *\(https\{0,1\}://[^ ]*/debian\)/\{0,1\}$|\1|p' | head -n 1
}

# apt with the suite's private configuration (none for the host's suite).
apt_opts=
if [ -n "$suite" ]; then
	aptdir=$apt_root/apt/$suite
	apt_opts="-o Dir::Etc::sourcelist=$aptdir/sources.list -o Dir::Etc::sourceparts=-
		-o Dir::State::Lists=$aptdir/lists -o Dir::Cache=$aptdir/cache
		-o Dir::State::status=/dev/null"
fi
# shellcheck disable=SC2086
apt_cache() { apt-cache $apt_opts "$@"; }

# As root, apt drops to user _apt to download, which cannot write into a
# private temporary directory; there is nothing to drop to.
sandbox=
[ "$(id -u)" -ne 0 ] || sandbox="-o APT::Sandbox::User=root"

private_update() {
	mirror=$(host_mirror)
	mirror=${mirror:-http://deb.debian.org/debian}
	mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
	echo "deb $mirror $suite main" >"$aptdir/sources.list"
	echo "$prog: apt-get update for $suite from $mirror (private lists in $aptdir)" >&2
	# shellcheck disable=SC2086
	apt-get -qq $apt_opts $sandbox update >&2 || die "apt-get update for $suite failed"
}

# A fresh machine (CI) may have an empty package cache: update the suite's
# lists, the private ones or (as root) the host's.  $1 names the package
# apt-cache did not know.
empty_cache_update() {
	[ "$(id -u)" -eq 0 ] || die "apt-cache knows no $1; run apt-get update as root"
	echo "$prog: package cache empty, running apt-get update" >&2
	if [ -n "$suite" ]; then
		private_update
	else
		apt-get update -qq >&2 || die "apt-get update failed"
	fi
}

# A private suite's lists are refreshed once a day; the host's are its own.
private_refresh() {
	[ -n "$suite" ] || return 0
	if [ ! -e "$aptdir/sources.list" ] ||
		[ -n "$(find "$aptdir/sources.list" -mtime +0)" ]; then
		[ "$(id -u)" -eq 0 ] || [ -w "$apt_root" ] || die "cannot write $apt_root"
		private_update
		touch "$aptdir/sources.list"
	fi
}
