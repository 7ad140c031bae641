#!/bin/sh
# Inside the lab VM: KVM's own per-VM stats beside the agent's counts.
# The agent runs; each shape's kvmwalk prints KVM's stats (--stats, from
# the binary stats fd) and stops itself with its VM still there (--hold).
# While it is stopped nothing in its VM moves, so three readers see the
# same figures: kvmwalk's line, debugfs, and the agent's scrape.  Then it
# goes on, destroys its VM and exits.  Sections:
#   shape NAME          kvmwalk's output (its stats line), then its exit code
#   debugfs NAME        /sys/kernel/debug/kvm/PID-*/STAT, as STAT=VALUE
#   tp NAME             the kernel's kvmmmu tracepoint counts for its pid,
#                       up to the hold
#   metrics NAME held   a scrape while it is stopped
#   metrics NAME after  a scrape after it exited (its VM destroyed)
#   metrics nodebugfs   two scrapes after debugfs was unmounted
#   shutdown            the agent's exit code and its stderr
#
# Environment (from the test): KUE_SHAPES ("name:arg,arg;..." with commas
# for spaces).

T=/sys/kernel/tracing

. /lib/kue-scenario.sh

kvm-unsync-exporter --web.listen-address="$ADDR" 2>/tmp/agent.err &
AGENT=$!
wait_serving $AGENT 100 scrape

# The kernel's own record of every page that goes unsync or is synced.
tp_on

IFS=';'
for spec in $KUE_SHAPES; do
	name=${spec%%:*}
	args=$(echo "${spec#*:}" | tr ',' ' ')
	echo >$T/trace
	IFS=' '
	# shellcheck disable=SC2086 # one word per argument
	hold_walk "$name" $args
	IFS=';'
	pid=$(sed -n 's/^kvmwalk: holding pid=\([0-9]*\).*/\1/p' /tmp/kvmwalk.out)
	tp_counts "$name" "$pid"
	begin "debugfs $name"
	# the stats the agent reads (user/kvm_stats.c), one VM per VMM here
	for f in mmu_shadow_zapped mmu_pte_write mmu_pde_zapped mmu_flooded \
		mmu_recycled mmu_cache_miss mmu_unsync; do
		echo "$f=$(cat /sys/kernel/debug/kvm/"$pid"-*/$f)"
	done
	end "debugfs $name"
	begin "metrics $name held"
	scrape
	end "metrics $name held"
	release_walk "$name"
	begin "metrics $name after"
	scrape
	end "metrics $name after"
done
IFS=' '

# No debugfs: the agent says so once and goes on serving the rest.
umount -l /sys/kernel/debug
begin "metrics nodebugfs"
scrape
scrape >/dev/null
end "metrics nodebugfs"

stop_agent $AGENT
