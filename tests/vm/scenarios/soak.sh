#!/bin/sh
# Inside the lab VM: soak the agent.  Parallel scrapers (busybox wget) and
# slow clients (the request sent in two halves a second apart; one client
# that connects and sends nothing) hit /metrics while kvmwalk VMs run one
# after another, then the scenario prints what the host-side test compares
# with the model (tests/vm/test_soak_lab.py):
#   runs          one line per kvmwalk run: name, pid, rc, its arguments
#   clients       per client: scrapes that returned a whole page, failures
#   rss           the agent's VmRSS (kB) after the warm-up, after each of
#                 three phases under the same load (the last one at the end)
#   vm series     for each per-VM series (pid label), the largest value any
#                 scrape saw: a VM's final counts are published by exactly
#                 one scrape after it exits, whichever client made it, so
#                 every client keeps every scrape's per-VM lines
#   metrics final a scrape once every client has finished and every VM
#                 has been dropped
#   shutdown      agent exit code after SIGTERM, and its stderr (where a
#                 sanitizer build reports)
#
# Environment (from the test): KUE_SOAK_SHAPES ("name:arg,arg;..." cycled
# over the runs), KUE_SOAK_RUNS, KUE_SOAK_WARMUP_RUNS (runs before the
# first RSS reading), KUE_SOAK_WARMUP (scrapes before it, a multiple of
# 10), KUE_SOAK_SCRAPERS (parallel wget loops), KUE_SOAK_SCRAPES (scrapes
# per loop and phase, a multiple of 10), KUE_SOAK_SLOW (slow clients),
# KUE_MODE (attach mode), KUE_AGENT_ARGS (extra agent flags).
# Nothing here is timed: every client does a fixed number of requests.

ADDR=127.0.0.1:10190
URL=http://$ADDR/metrics
RUNS=${KUE_SOAK_RUNS:-20}
WARMUP_RUNS=${KUE_SOAK_WARMUP_RUNS:-2}
WARMUP=${KUE_SOAK_WARMUP:-100}
SCRAPERS=${KUE_SOAK_SCRAPERS:-4}
SCRAPES=${KUE_SOAK_SCRAPES:-500}
SLOW=${KUE_SOAK_SLOW:-2}

. /lib/kue-scenario.sh

rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$AGENT/status; }

# scrape ID [N]: N scrapes (default 1) by one wget, the pages appended to
# /tmp/pages.ID; OK and FAIL count them.  Several URLs per wget: a fork
# costs more than a scrape under TCG, and the clients must keep the
# server busy.
scrape() {
	k=${2:-1} urls=
	while [ "$k" -gt 0 ]; do
		urls="$urls $URL"
		k=$((k - 1))
	done
	# shellcheck disable=SC2086
	if wget -q -O - $urls >>/tmp/pages."$1"; then
		OK=$((OK + ${2:-1}))
	else
		FAIL=$((FAIL + ${2:-1}))
	fi
}

# slow ID: one request sent in two halves, a second apart.
slow() {
	{
		printf 'GET /metrics HTTP/1.1\r\nHost: soak\r\n'
		sleep 1
		printf 'Connection: close\r\n\r\n'
	} | nc 127.0.0.1 10190 >/tmp/page."$1" 2>/dev/null
	if head -n 1 /tmp/page."$1" | grep -q ' 200 '; then
		cat /tmp/page."$1" >>/tmp/pages."$1"
		OK=$((OK + 1))
	else
		FAIL=$((FAIL + 1))
	fi
}

# counts ID: the client's tally, from its own (sub)shell.
counts() { echo "$1 ok=$OK fail=$FAIL" >/tmp/counts."$1"; }

# run N: the Nth kvmwalk run, shapes taken in turn.
run() {
	n=$1
	set -f
	IFS=';'
	# shellcheck disable=SC2086
	set -- $KUE_SOAK_SHAPES
	IFS=' '
	set +f
	k=$(( (n - 1) % $# + 1 ))
	spec=
	eval "spec=\${$k}"
	name=${spec%%:*}
	args=$(echo "${spec#*:}" | tr ',' ' ')
	logged_run "$n" "$name" "$args"
}

# shellcheck disable=SC2086
kvm-unsync-exporter --attach="${KUE_MODE:-auto}" --web.listen-address="$ADDR" \
	${KUE_AGENT_ARGS:-} >/tmp/agent.out 2>/tmp/agent.err &
AGENT=$!
wait_serving $AGENT 200 wget -q -O /dev/null "$URL"

# Warm-up: the first VMs come and go, the first scrapes allocate.
: >/tmp/runs
OK=0 FAIL=0
n=0
while [ $n -lt "$WARMUP_RUNS" ]; do
	n=$((n + 1))
	run $n
	scrape w
done
i=0
while [ $i -lt "$WARMUP" ]; do
	scrape w 10
	i=$((i + 10))
done
counts w
RSS_WARM=$(rss)

# phase P LAST: clients in the background, kvmwalk runs up to LAST in the
# foreground; returns once every client is done.
phase() {
	c=1
	while [ $c -le "$SCRAPERS" ]; do
		(
			OK=0 FAIL=0 j=0
			while [ $j -lt "$SCRAPES" ]; do
				scrape "$1s$c" 10
				j=$((j + 10))
			done
			counts "$1s$c"
		) &
		eval "SCRAPER_$c=\$!"
		c=$((c + 1))
	done
	rm -f /tmp/stop
	c=1
	while [ $c -le "$SLOW" ]; do
		(
			OK=0 FAIL=0
			# At least one request, however soon the scrapers end.
			while :; do
				slow "$1slow$c"
				[ -f /tmp/stop ] && break
			done
			counts "$1slow$c"
		) &
		eval "SLOW_$c=\$!"
		c=$((c + 1))
	done
	# A client that connects and never sends a byte (the server
	# closes it after its connection timeout).
	sleep 40 | nc 127.0.0.1 10190 >/dev/null 2>&1 &
	IDLE=$!

	while [ $n -lt "$2" ]; do
		n=$((n + 1))
		run $n
	done

	c=1
	while [ $c -le "$SCRAPERS" ]; do
		eval "wait \$SCRAPER_$c"
		c=$((c + 1))
	done
	touch /tmp/stop
	c=1
	while [ $c -le "$SLOW" ]; do
		eval "wait \$SLOW_$c"
		c=$((c + 1))
	done
	kill $IDLE 2>/dev/null
}

# Three phases under the same load: a leak per scrape, per connection or
# per VM grows the RSS in every phase, so the last one would end higher
# than the one before.  The allocator's own high-water marks (a heap top
# pinned by one block after a burst of concurrent connections) show up
# once, in an early phase, and do not recur.
phase a $(( WARMUP_RUNS + (RUNS - WARMUP_RUNS) / 3 ))
RSS_MID=$(rss)
phase b $(( WARMUP_RUNS + 2 * (RUNS - WARMUP_RUNS) / 3 ))
RSS_LATE=$(rss)
phase c "$RUNS"

# Twice: a VM first seen dead is published once more, then dropped.
OK=0 FAIL=0
scrape f
: >/tmp/page.f
wget -q -O /tmp/page.f "$URL" && cat /tmp/page.f >>/tmp/pages.f && OK=$((OK + 1))
counts f
RSS_END=$(rss)
HWM=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$AGENT/status)

begin runs
cat /tmp/runs
end runs
begin clients
# Each client's tally, and the pages its file holds (one build_info line
# per whole page).
for f in /tmp/counts.*; do
	id=${f#/tmp/counts.}
	echo "$(cat "$f") pages=$(grep -c '^kvm_unsync_build_info' /tmp/pages.$id)"
done
end clients
begin rss
echo "warm=$RSS_WARM"
echo "mid=$RSS_MID"
echo "late=$RSS_LATE"
echo "end=$RSS_END"
echo "hwm=$HWM"
end rss
begin "vm series"
cat /tmp/pages.* | awk '
	!/^kvm_unsync_.*pid="/ { next }
	{ v = $NF; k = substr($0, 1, length($0) - length(v) - 1)
	  if (!(k in m) || v + 0 > m[k] + 0) m[k] = v }
	END { for (k in m) print k, m[k] }'
end "vm series"
begin "metrics final"
cat /tmp/page.f
end "metrics final"

kill -TERM $AGENT
wait $AGENT
rc=$?
begin shutdown
echo "rc=$rc"
cat /tmp/agent.err
end shutdown
