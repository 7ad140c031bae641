#!/bin/sh
# Build the tree that makes the lab VM a systemd host: this machine's
# systemd (PID 1, journald, systemctl, journalctl) with their libraries,
# the base targets, the agent installed and its units enabled the way
# deploy/kvm-unsync-exporter.service tells operators to, and the lab's own
# kue-lab.service that runs /scenario once the agent's service is up.
#
# Usage: root.sh OUT.tar AGENT
#        root.sh -d DEB OUT.tar
#
# -d: no agent and no units of its own; instead what installing and
# purging the package DEB needs (dpkg, the programs it insists on, perl
# and init-system-helpers' scripts for the maintainer scripts, an empty
# package database) and DEB itself, at /root/kue.deb.
#
# boot.sh, run as PID 1 in the VM, unpacks OUT.tar over a copy of the
# lab's root and hands over to systemd.
set -eu

die() {
	echo "root.sh: $*" >&2
	exit 1
}

deb=''
if [ "${1:-}" = -d ]; then
	[ $# -eq 3 ] || die "usage: root.sh -d DEB OUT.tar"
	deb=$2 out=$3 agent=''
	[ -f "$deb" ] || die "no package $deb"
else
	[ $# -eq 2 ] || die "usage: root.sh OUT.tar AGENT | -d DEB OUT.tar"
	out=$1 agent=$2
	[ -x "$agent" ] || die "no agent binary $agent (make all)"
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
units=/lib/systemd/system
[ -x /lib/systemd/systemd ] || die "no /lib/systemd/systemd (apt-get install systemd)"

work=$(mktemp -d "${TMPDIR:-/tmp}/kue-systemd-root.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

# put, put_bin
. "$here/../put.sh"

for b in /lib/systemd/systemd /lib/systemd/systemd-journald /bin/systemctl \
	 /bin/journalctl; do
	put_bin "$b" || die "cannot copy $b and its libraries"
done

# The targets the units' default dependencies name, and the journal.
for u in basic.target sysinit.target sockets.target paths.target \
	 slices.target timers.target multi-user.target shutdown.target \
	 systemd-journald.service systemd-journald.socket \
	 systemd-journald-dev-log.socket systemd-journald-audit.socket; do
	put "$units/$u"
done
mkdir -p "$root$units/sockets.target.wants" "$root$units/sysinit.target.wants"
ln -s ../systemd-journald.socket "$root$units/sockets.target.wants/"
ln -s ../systemd-journald-dev-log.socket "$root$units/sockets.target.wants/"
ln -s ../systemd-journald.service "$root$units/sysinit.target.wants/"

put "$here/kue-lab.service" /etc/systemd/system/kue-lab.service
if [ -n "$deb" ]; then
	. "$here/package.sh"
	put_dpkg "$deb" /root/kue.deb
	systemctl --root="$root" --quiet enable kue-lab.service
else
	# The agent and its units as shipped, enabled as their header says.
	put_bin "$agent" /usr/local/sbin/kvm-unsync-exporter ||
		die "cannot copy $agent and its libraries"
	put "$repo/deploy/kvm-unsync-exporter.service" \
	    /etc/systemd/system/kvm-unsync-exporter.service
	put "$repo/deploy/kvm-unsync-exporter.socket" \
	    /etc/systemd/system/kvm-unsync-exporter.socket
	systemctl --root="$root" --quiet enable kvm-unsync-exporter.socket \
		kvm-unsync-exporter.service kue-lab.service
fi
systemctl --root="$root" --quiet set-default multi-user.target

mkdir -p "$root/etc" "$root/run" "$root/tmp" "$root/var/tmp" "$root/home" \
	"$root/var/log"
ln -s ../run "$root/var/run"
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
printf 'ID=kue-lab\nNAME="kvm-unsync-exporter lab"\n' >"$root/etc/os-release"

mkdir -p "$(dirname "$out")"
tar -C "$root" -cf "$out.tmp.$$" .
mv "$out.tmp.$$" "$out"
