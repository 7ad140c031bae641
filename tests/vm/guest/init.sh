#!/bin/busybox sh
# The Linux guest's /init (tests/vm/labguest.py packs it with a static
# busybox): kue.forks=N times (kernel command line, default 100) fork and
# exec a short process, then power off.  Each exec gives KVM a new address
# space to shadow: new page tables, CR3 switches, syncs of the tables the
# guest changed.
/bin/busybox mount -t proc proc /proc
n=100
for w in $(/bin/busybox cat /proc/cmdline); do
	case $w in
	kue.forks=*) n=${w#kue.forks=} ;;
	esac
done
echo "guest: forking $n"
i=0 bad=0
while [ $i -lt "$n" ]; do
	# a path, not an applet name: the shell forks and execs
	/bin/busybox true || bad=$((bad + 1))
	i=$((i + 1))
done
echo "guest: forked $n failed=$bad"
/bin/busybox poweroff -f
