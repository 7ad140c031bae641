#!/bin/sh
# PID 1 in the lab VM when lab.py boots it with KUE_PID1 set to this (see
# initramfs.sh): copy the lab's root and systemd's tree (root.sh, at
# /systemd-root.tar) onto a tmpfs, move the API file systems over, and
# make systemd init.  systemd then starts the agent's socket and service
# and kue-lab.service, which runs /scenario and powers off.
fail() {
	echo "boot.sh: $*"
	echo "=== KUE SCENARIO EXIT rc=125 tainted=$(cat /proc/sys/kernel/tainted) ==="
	poweroff -f
}

mkdir -p /newroot && mount -t tmpfs -o mode=0755 root /newroot ||
	fail "cannot mount a tmpfs"
for d in bin etc lib lib64 root scenario usr; do
	[ ! -e "/$d" ] || cp -a "/$d" /newroot/ || fail "cannot copy /$d"
done
tar -x -f /systemd-root.tar -C /newroot || fail "cannot unpack systemd"
for d in dev proc sys; do
	mkdir -p "/newroot/$d" && mount --move "/$d" "/newroot/$d" ||
		fail "cannot move /$d"
done
exec switch_root /newroot /lib/systemd/systemd --show-status=no \
	--log-level=notice --log-target=console
