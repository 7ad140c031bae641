#!/bin/sh
# Inside the lab VM with systemd as PID 1 (tests/vm/systemd/, root.sh -d):
# the Debian package installed, configured through /etc/default, used and
# purged, as an operator would.  Run by kue-lab.service, KVM loaded.
#   install        dpkg -i: its exit code, the package's status
#   installed      the units enabled and running, the links the
#                  maintainer scripts made, /etc/default as shipped
#   files          dpkg -L: every path of the package
#   configured     after ARGS="--max-vms=1" in /etc/default and a
#                  systemctl restart: the service, its command line
#   shape sd, shape sd2   two kvmwalk runs (--tables 8): one VM with its
#                  own labels, the next one folded into vm="other"
#   metrics        a scrape after them
#   purge          dpkg --purge: its exit code
#   purged         what is left: the units' state, files of the package,
#                  any path named after it, pins, the port
#   journal        what the agent logged (journalctl)
# The real dpkg, not busybox's applets of the same names: busybox sh
# runs its own applets whatever PATH says, so by absolute path; and root's
# PATH on Debian for what dpkg runs (dpkg-deb, tar).
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
DPKG=/usr/bin/dpkg
QUERY=/usr/bin/dpkg-query
U=kvm-unsync-exporter
PIN=/sys/fs/bpf/kvm_unsync
DEFAULT=/etc/default/$U
. /lib/kue-scenario.sh
# show UNIT: "UNIT Key=Value" lines
show() {
	systemctl --no-pager show -p LoadState -p ActiveState -p SubState \
		-p UnitFileState -p MainPID -p NRestarts "$1" | sed "s/^/$1 /"
}
units() {
	show $U.socket
	show $U.service
}

# The libraries the package depends on (libc6, libbpf1, ...) are in the
# VM (root.sh copied them), but no package is registered: without
# --force-depends dpkg would leave it unconfigured.
begin install
$DPKG -i --force-depends /root/kue.deb
echo "rc=$?"
$QUERY -W -f='status=${Status}\n' $U
end install

begin installed
units
find /etc/systemd/system -path "*.wants/$U.*" | sed 's/^/link=/'
cat $DEFAULT
end installed

begin files
$DPKG -L $U | tee /tmp/files
end files

sed -i 's/^ARGS=.*/ARGS="--max-vms=1"/' $DEFAULT
systemctl restart $U.service
rc=$?
pid=$(systemctl show -p MainPID --value $U.service)
begin configured
echo "rc=$rc"
units
echo "cmdline=$(tr '\0' ' ' </proc/"$pid"/cmdline)"
end configured

walk sd --tables 8
walk sd2 --tables 8
begin metrics
scrape
end metrics

begin purge
$DPKG --purge $U
echo "rc=$?"
end purge

begin purged
units
$QUERY -W -f='status=${Status}\n' $U 2>&1
# Directories the package shares with others (/usr/sbin, /etc) stay.
while read -r f; do
	[ -d "$f" ] && [ -n "$(ls -A "$f")" ] || [ ! -e "$f" ] ||
		echo "left=$f"
done </tmp/files
# Anything named after it: units, links, dpkg's and deb-systemd-helper's
# state (/run and /sys are other file systems).
find / -xdev \( -name "*$U*" -o -name '*kvm_unsync*' \) ! -path /root/kue.deb |
	sed 's/^/named=/'
echo "pins=$(ls $PIN 2>/dev/null | wc -l)"
scrape >/dev/null 2>&1
echo "scrape=$?"
end purged

begin journal
journalctl --no-pager -u $U.service -o cat
end journal
