#!/bin/sh
# Inside the lab VM: VMs that exit before any reader can look at them, on
# a loaded lab, beside a running agent.  The agent serves (and is not
# scraped while they run); --batch --record reads its pins beside it; a
# busy loop takes the CPU at the readers' priority; each VM is a kvmwalk
# run under SCHED_FIFO with real-time throttling off, so no reader runs
# at all from its first event to its exit: a name can only come from what
# the kernel side kept.
#   lifetimes        one line per VM: name, pid, centiseconds it lived
#   shape NAME       kvmwalk's output and exit code (walk())
#   batch            --batch's blocks;  batch-stderr: its exit code, stderr
#   record           the record it wrote
#   names            bpftool -j map dump of the pinned vm_names, after the
#                    VMs, before any scrape
#   metrics          the first scrape after the VMs (they are first seen
#                    dead: published, kept one more scrape)
#   metrics final    the next scrape (after it, they are reaped)
#   names reaped     the dump of vm_names after the reap
#   shutdown         the agent's exit code and stderr
# Environment: KUE_NAMES (VM names, space-separated), KUE_NAMES_SHAPE
# (kvmwalk arguments, commas for spaces), KUE_INTERVAL (--batch's).

. /lib/kue-scenario.sh

PIN=/sys/fs/bpf/kvm_unsync
SHAPE=$(echo "${KUE_NAMES_SHAPE:---tables,12}" | tr ',' ' ')
INTERVAL=${KUE_INTERVAL:-5}

kvm-unsync-exporter --web.listen-address="$ADDR" 2>/tmp/agent.err &
AGENT=$!
wait_serving $AGENT 300 test -e $PIN/vm_names

kvm-unsync-exporter --batch --interval="$INTERVAL" --record=/tmp/record.json \
	>/tmp/batch.out 2>/tmp/batch.err &
BATCH=$!
# its first block: reading the agent's maps
wait_serving $BATCH 900 grep -q "sorted by" /tmp/batch.out

# The load, at the readers' priority (SCHED_OTHER, nice 0).
(while :; do :; done) &
BUSY=$!

# A SCHED_FIFO task keeps the CPU until it blocks or exits: no reader
# looks while a VM lives.
echo -1 >/proc/sys/kernel/sched_rt_runtime_us
: >/tmp/lifetimes
for name in $KUE_NAMES; do
	t0=$(uptime_cs)
	# shellcheck disable=SC2086
	walk "$name" $SHAPE
	t1=$(uptime_cs)
	pid=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' /tmp/kvmwalk.out | head -n 1)
	echo "$name pid=$pid cs=$((t1 - t0))" >>/tmp/lifetimes
done
echo 950000 >/proc/sys/kernel/sched_rt_runtime_us
begin lifetimes
cat /tmp/lifetimes
end lifetimes

# Every VM gone before any reader looked: the daemon's maps and --batch's
# view see them dead, the next block of --batch is the first to name them.
blocks=$(grep -c "sorted by" /tmp/batch.out)
i=0
while [ "$(grep -c "sorted by" /tmp/batch.out)" -le "$blocks" ] && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -INT $BATCH
wait $BATCH
rc=$?
kill $BUSY
wait $BUSY 2>/dev/null
begin batch
cat /tmp/batch.out
end batch
begin batch-stderr
echo "rc=$rc"
cat /tmp/batch.err
end batch-stderr
begin record
cat /tmp/record.json
end record

begin names
bpftool -j map dump pinned $PIN/vm_names
echo
end names
begin metrics
scrape
end metrics
begin "metrics final"
scrape
end "metrics final"
begin "names reaped"
bpftool -j map dump pinned $PIN/vm_names
echo
end "names reaped"

stop_agent $AGENT
