#!/bin/sh
# Inside the lab VM (KVM loaded): the cost of the agent's probes on the
# walk, measured by the kernel (bpf_stats: each program's run count and
# run time).  The same kvmwalk workload runs with no agent, then under the
# agent in each attach mode, alternating, BENCH_REPEAT times each.
# Emulation translates code the first time it runs, the agent's freshly
# JITed programs too: a warm-up run of the workload comes first, and under
# the agent the figures are taken before and after the measured run.
#   run MODE N     wall time of the workload (centiseconds), kvmwalk's line
#   metrics MODE N the agent's scrape before (.0) and after (.1) it
#   progs MODE N   bpftool -j prog show, before (.0) and after (.1) it:
#                  run_cnt and run_time_ns
WORKLOAD="--tables 40 --rounds ${BENCH_ROUNDS:-20}"
. /lib/kue-scenario.sh

# workload NAME: one run as VM NAME, its output in /tmp/kvmwalk.out
workload() {
	# SCHED_FIFO: see walk() in tests/vm/scenarios/lib.sh.
	chrt -f 50 kvmwalk -name "guest=$1" $WORKLOAD >/tmp/kvmwalk.out 2>&1
}
snapshot() {
	begin "metrics $1"
	scrape
	end "metrics $1"
	begin "progs $1"
	bpftool -j prog show
	echo
	end "progs $1"
}

echo 1 >/proc/sys/kernel/bpf_stats_enabled
workload warmup

# one MODE N: the workload under the agent in MODE (none: no agent)
one() {
	if [ "$1" != none ]; then
		kvm-unsync-exporter --attach="$1" --web.listen-address="$ADDR" \
			>/dev/null 2>/tmp/agent.err &
		agent=$!
		wait_serving $agent 300 scrape
	fi
	if [ "$1" != none ]; then
		workload warmup >/dev/null
		snapshot "$1 $2.0"
	fi
	t0=$(uptime_cs)
	workload bench
	rc=$?
	t1=$(uptime_cs)
	begin "run $1 $2"
	cat /tmp/kvmwalk.out
	echo "rc=$rc"
	echo "centiseconds=$((t1 - t0))"
	end "run $1 $2"
	[ "$1" != none ] || return 0
	snapshot "$1 $2.1"
	kill -TERM $agent
	wait $agent
}

i=1
while [ $i -le "${BENCH_REPEAT:-3}" ]; do
	for mode in none fentry kprobe; do
		one $mode $i
	done
	i=$((i + 1))
done
