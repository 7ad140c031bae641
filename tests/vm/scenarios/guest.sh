#!/bin/sh
# Inside the lab VM: a real Linux guest (QEMU on the lab's KVM, shadow
# paging) under the agent, once per attach mode, with the kernel's own
# instruments on QEMU's threads beside it.  For each mode M of KUE_MODES:
#   check M      kvm-unsync-exporter --check output and exit code
#   guest M      QEMU's output, its pid (pid=) and exit code (rc=)
#   kernel M     the kernel's figures for that VM (/lib/kue-guest-trace.awk
#                over the trace), the trace's lost events (lost=) and the
#                kprobe events' misses (missed=) and hits (hits.EVENT=)
#   metrics M    a scrape after QEMU exited (its VM's last publication)
#   shutdown M   the agent's exit code and stderr after SIGTERM
# Instruments (tracefs, no BPF): kprobe events on mmu_sync_children,
# __mmu_unsync_walk and mmu_zap_unsync_children (entry and return), the
# kvmmmu sync/unsync page tracepoints, all filtered to QEMU's threads.
# KUE_CLEAR_SITES ("walk:FUNC+0xOFF cp:FUNC+0xOFF ...", tests/vm/labguest.py
# clear_sites()): kprobe events on each instruction that decrements
# unsync_children, in the walk and in mmu_pages_clear_parents (or where it
# is inlined): the bitmap clears, by site.
# KUE_GUEST_FORKS: forks in the guest.  Exit status: non-zero if a probe
# could not be placed, the agent failed to start or QEMU failed.

. /lib/kue-scenario.sh
. /lib/kue-guest.sh

fail=0
FORKS=${KUE_GUEST_FORKS:-100}

grep -E ' (mmu_sync_children|__mmu_unsync_walk|mmu_zap_unsync_children)(\.[a-z]+\.[0-9]+)*([[:space:]]|$)' \
	/proc/kallsyms | awk '{ print $3 }' >/tmp/ksyms
add_probe() {
	echo "$1" >>$T/kprobe_events || { echo "guest: cannot place probe: $1"; fail=1; }
}
SYNC_CHILDREN=$(ksym mmu_sync_children)
WALK=$(ksym __mmu_unsync_walk)
ZAP_CHILDREN=$(ksym mmu_zap_unsync_children)
if [ -z "$SYNC_CHILDREN" ] || [ -z "$WALK" ] || [ -z "$ZAP_CHILDREN" ]; then
	echo "guest: walk functions missing from kallsyms"
	exit 1
fi
# place_probes: the kprobe events, afresh (kprobe_profile counts from 0)
place_probes() {
	echo >$T/kprobe_events
	add_probe "p:kue/sc_enter $SYNC_CHILDREN"
	add_probe "r32:kue/sc_exit $SYNC_CHILDREN ret=\$retval:s32"
	add_probe "p:kue/walk_enter $WALK"
	add_probe "r64:kue/walk_exit $WALK ret=\$retval:s32"
	add_probe "p:kue/zap_enter $ZAP_CHILDREN"
	add_probe "r32:kue/zap_exit $ZAP_CHILDREN ret=\$retval:s32"
	_pp_n=0
	for _pp_site in $KUE_CLEAR_SITES; do
		add_probe "p:kue/clr_${_pp_site%%:*}_$_pp_n ${_pp_site#*:}"
		_pp_n=$((_pp_n + 1))
	done
}
echo 0 >$T/tracing_on
echo 1 >$T/options/event-fork
echo 65536 >$T/buffer_size_kb

for mode in ${KUE_MODES:-fentry kprobe}; do
	begin "check $mode"
	kvm-unsync-exporter --check --attach="$mode" 2>&1
	echo "rc=$?"
	end "check $mode"
	kvm-unsync-exporter --attach="$mode" --web.listen-address="$ADDR" \
		>/dev/null 2>/tmp/agent.err &
	agent=$!
	wait_serving $agent 600 scrape

	# The probes go on after the agent attached: both flavours share the
	# functions with them (ftrace's IPMODIFY sharing, kprobe aggregation).
	place_probes
	if [ $fail != 0 ]; then
		kill -TERM $agent
		exit 1
	fi
	echo 1 >$T/events/kue/enable || fail=1
	echo 1 >$T/events/kvmmmu/kvm_mmu_sync_page/enable || fail=1
	echo 1 >$T/events/kvmmmu/kvm_mmu_unsync_page/enable || fail=1
	echo >$T/trace
	echo 1 >$T/tracing_on
	GUEST_TRACE_PID=1 run_guest "lab-guest-$mode" "$FORKS" /tmp/guest.out
	echo 0 >$T/tracing_on
	echo 0 >$T/events/enable
	echo >$T/set_event_pid
	begin "guest $mode"
	cat /tmp/guest.out
	echo "pid=$(cat /tmp/qemu.pid)"
	end "guest $mode"
	guest_ok /tmp/guest.out || fail=1

	begin "kernel $mode"
	grep -v '^#' $T/trace | awk -f /lib/kue-guest-trace.awk
	echo "lost=$(awk '/^overrun:|^dropped events:/ { n += $NF } END { print n + 0 }' \
		$T/per_cpu/cpu0/stats)"
	# only the kue/ events are placed: no group in this file's names
	awk '{ m += $3; sub(".*/", "", $1); print "hits." $1 "=" $2 }
		END { print "missed=" m + 0 }' $T/kprobe_profile
	end "kernel $mode"

	begin "metrics $mode"
	scrape
	end "metrics $mode"
	kill -TERM $agent
	wait $agent
	rc=$?
	begin "shutdown $mode"
	echo "rc=$rc"
	cat /tmp/agent.err
	end "shutdown $mode"
	echo >$T/kprobe_events
done
exit $fail
