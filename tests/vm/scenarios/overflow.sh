#!/bin/sh
# Inside the lab VM: overflow the agent's ring buffer on purpose.  The
# agent runs with a tiny ring buffer (--ringbuf-kib, 4 KiB by default) and
# --trace=frames (one record per walk frame on top of one per sync call and
# zap walk).  Some kvmwalk runs go while the agent consumes; then the agent
# is stopped (SIGSTOP) while more runs go, so the buffer must fill however
# fast the consumer would have drained it, and continued (SIGCONT).
#   runs          one line per kvmwalk run: name, pid, rc, phase, arguments
#   vm series     for each per-VM series, the largest value any scrape saw
#   drain         scrapes until the consumed-records counter stopped moving
#   metrics final a scrape once every VM has been dropped
#   trace         counts of the --trace=frames --json lines by type
#   shutdown      agent exit code after SIGTERM, and its stderr
#
# Environment (from the test): KUE_OVF_SHAPE (kvmwalk arguments, commas for
# spaces), KUE_OVF_LIVE, KUE_OVF_STALLED (runs in each phase),
# KUE_OVF_RINGBUF_KIB, KUE_MODE (attach mode).

ADDR=127.0.0.1:10190
URL=http://$ADDR/metrics
SHAPE=$(echo "${KUE_OVF_SHAPE:---tables,40,--rounds,10}" | tr ',' ' ')
LIVE=${KUE_OVF_LIVE:-3}
STALLED=${KUE_OVF_STALLED:-3}

. /lib/kue-scenario.sh

# Every page is kept: a VM's last counts are in the scrape after it exits.
scrape() { wget -q -O /tmp/page "$URL" && cat /tmp/page >>/tmp/pages; }

value() { sed -n "s/^$1 //p" /tmp/page; }

run() {
	logged_run "$2" "$1" "$SHAPE"
}

kvm-unsync-exporter --attach="${KUE_MODE:-auto}" --web.listen-address="$ADDR" \
	--ringbuf-kib="${KUE_OVF_RINGBUF_KIB:-4}" --trace=frames --json \
	>/tmp/trace.jsonl 2>/tmp/agent.err &
AGENT=$!
wait_serving $AGENT 200 wget -q -O /dev/null "$URL"

: >/tmp/runs
: >/tmp/pages
n=0
while [ $n -lt "$LIVE" ]; do
	n=$((n + 1))
	run live $n
	scrape
done

# The consumer stalls: nothing drains the ring buffer while these run.
kill -STOP $AGENT
while [ $n -lt $((LIVE + STALLED)) ]; do
	n=$((n + 1))
	run stalled $n
done
kill -CONT $AGENT

# Drained once the consumed-records count is the same in two scrapes in a
# row (nothing produces records any more).  Not an assertion: the test
# checks the counts themselves.
begin drain
last=-1 i=0
while [ $i -lt 100 ]; do
	scrape || { sleep 0.2; i=$((i + 1)); continue; }
	now=$(value kvm_unsync_ringbuf_events_total)
	echo "events=$now dropped=$(value kvm_unsync_ringbuf_dropped_total)"
	[ "$now" = "$last" ] && break
	last=$now
	sleep 0.2
	i=$((i + 1))
done
end drain
# The stalled VMs were first seen dead: published twice, then dropped.
scrape
scrape

begin runs
cat /tmp/runs
end runs
begin "vm series"
awk '
	!/^kvm_unsync_.*pid="/ { next }
	{ v = $NF; k = substr($0, 1, length($0) - length(v) - 1)
	  if (!(k in m) || v + 0 > m[k] + 0) m[k] = v }
	END { for (k in m) print k, m[k] }' /tmp/pages
end "vm series"
begin "metrics final"
cat /tmp/page
end "metrics final"

kill -TERM $AGENT
wait $AGENT
rc=$?
begin trace
echo "lines=$(wc -l </tmp/trace.jsonl)"
for t in sync zap_walk frame; do
	echo "$t=$(grep -c "^{\"type\":\"$t\"" /tmp/trace.jsonl)"
done
end trace
begin shutdown
echo "rc=$rc"
cat /tmp/agent.err
end shutdown
