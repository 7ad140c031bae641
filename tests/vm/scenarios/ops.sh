#!/bin/sh
# Inside the lab VM (KVM loaded): the daemon in production shape, with
# --max-vms=1, its probes attached with fentry.
#   threads        each thread's capabilities once serving
#   shape NAME     kvmwalk runs (pid=, rc=): a, b, c one after the other
#                  with no scrape between them, then d after they are gone
#   metrics abc    first scrape after a, b and c (all in the maps at once)
#   metrics gone   two scrapes later: a, b, c published and dropped
#   metrics d      after d
#   shutdown       exit code, pins left, seconds from SIGTERM to exit
PIN=/sys/fs/bpf/kvm_unsync
. /lib/kue-scenario.sh

kvm-unsync-exporter --attach=fentry --max-vms=1 \
	--web.listen-address="$ADDR" >/dev/null 2>/tmp/agent.err &
AGENT=$!
wait_serving $AGENT 300 scrape
begin threads
threads $AGENT
end threads

walk a --tables 8
walk b --tables 8
walk c --tables 8
begin "metrics abc"
scrape
end "metrics abc"
scrape >/dev/null
begin "metrics gone"
scrape
end "metrics gone"
walk d --tables 8
begin "metrics d"
scrape
end "metrics d"

t0=$(uptime_cs)
kill -TERM $AGENT
wait $AGENT
rc=$?
t1=$(uptime_cs)
begin shutdown
echo "rc=$rc"
echo "pins=$(ls $PIN 2>/dev/null | wc -l)"
echo "centiseconds=$((t1 - t0))"
cat /tmp/agent.err
end shutdown
