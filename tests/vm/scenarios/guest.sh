#!/bin/sh
# Inside the lab VM: a real Linux guest (QEMU on the lab's KVM, shadow
# paging) under the agent in each attach mode of KUE_MODES (default
# "fentry kprobe"; one agent per mode, side by side), with the kernel's own
# instruments on QEMU's threads beside them.  Sections, M a mode:
#   check M      kvm-unsync-exporter --check output and exit code
#   guest        QEMU's output, its pid (pid=) and exit code (rc=)
#   kernel       the kernel's figures for that VM (/lib/kue-guest-trace.awk
#                over the trace), the trace's lost events (lost=) and the
#                kprobe events' misses (missed=) and hits (hits.EVENT=)
#   metrics M    a scrape of mode M's agent after QEMU exited (the VM's
#                last publication)
#   shutdown M   that agent's exit code and stderr after SIGTERM
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

MODES=${KUE_MODES:-fentry kprobe}
# One agent per mode, side by side (own pins, own port), all attached
# before QEMU starts and all counting the same guest.
port=10190
for mode in $MODES; do
	begin "check $mode"
	kvm-unsync-exporter --check --attach="$mode" 2>&1
	echo "rc=$?"
	end "check $mode"
	ADDR=127.0.0.1:$port
	kvm-unsync-exporter --attach="$mode" --web.listen-address="$ADDR" \
		--pin-dir=/sys/fs/bpf/kue-$mode >/dev/null 2>/tmp/agent-$mode.err &
	echo "$! $ADDR" >/tmp/agent-$mode.at
	# what wait_serving prints if this agent fails
	ln -sf agent-$mode.err /tmp/agent.err
	wait_serving $! 600 scrape
	port=$((port + 1))
done

# The probes go on after the agents attached: fentry and kprobe programs
# share the functions with them (ftrace's IPMODIFY sharing, kprobe
# aggregation).
place_probes
[ $fail = 0 ] || exit 1
echo 1 >$T/events/kue/enable || fail=1
echo 1 >$T/events/kvmmmu/kvm_mmu_sync_page/enable || fail=1
echo 1 >$T/events/kvmmmu/kvm_mmu_unsync_page/enable || fail=1
echo >$T/trace
echo 1 >$T/tracing_on
GUEST_TRACE_PID=1 run_guest lab-guest "$FORKS" /tmp/guest.out
echo 0 >$T/tracing_on
echo 0 >$T/events/enable
echo >$T/set_event_pid
begin guest
cat /tmp/guest.out
echo "pid=$(cat /tmp/qemu.pid)"
end guest
guest_ok /tmp/guest.out || fail=1

begin kernel
awk -f /lib/kue-guest-trace.awk $T/trace
echo "lost=$(awk '/^overrun:|^dropped events:/ { n += $NF } END { print n + 0 }' \
	$T/per_cpu/cpu0/stats)"
# only the kue/ events are placed: no group in this file's names
awk '{ m += $3; sub(".*/", "", $1); print "hits." $1 "=" $2 }
	END { print "missed=" m + 0 }' $T/kprobe_profile
end kernel
echo >$T/kprobe_events

for mode in $MODES; do
	read -r agent ADDR </tmp/agent-$mode.at
	begin "metrics $mode"
	scrape
	end "metrics $mode"
	kill -TERM $agent
	wait $agent
	rc=$?
	begin "shutdown $mode"
	echo "rc=$rc"
	cat /tmp/agent-$mode.err
	end "shutdown $mode"
done
exit $fail
