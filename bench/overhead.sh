#!/bin/sh
# Inside the lab VM (KVM loaded): what probing the walk costs the
# workload, measured by the workload itself.  kvmwalk --time sums its own
# time in KVM_RUN round by round, so every cost lands in it: the programs,
# the fentry trampolines, the kprobe traps, the agent's wake-ups.
#
# BENCH_REPEAT times, in an order that rotates each time, every variant
# (BENCH_VARIANTS, default all) runs every shape (BENCH_SHAPES:
# "name:arg,arg:kvm_amd_param,param;...", kvm_amd reloaded with those
# parameters when they differ from the last shape's: npt=0 for shadow
# paging, npt=1,nested=1 for the nested shapes):
#   none                 no BPF at all
#   naive-fentry         the naive floor: do-nothing fentry/fexit on
#                        mmu_sync_children, __mmu_unsync_walk and
#                        mmu_pages_clear_parents (where the kernel has
#                        it) + the two tracepoints as raw_tp (bench/floor.c)
#   own-fentry           do-nothing programs on the agent's own hooks
#                        (floor --hooks=agent: the two functions, tp_btf)
#   agent-fentry         the agent, --attach=fentry
#   naive-kprobe         the naive floor with kprobe/kretprobe
#   own-kprobe           the agent's own hooks, kprobe/kretprobe
#   agent-kprobe         the agent, --attach=kprobe
#   bpftrace             Debian's bpftrace running bench/walk.bt
# Under each variant and for each shape: a warm-up (emulation translates
# code the first time it runs, freshly JITed programs too), the measured
# run (BENCH_ROUNDS rounds, bpf_stats off, so the figures carry no
# accounting), then a short run with bpf_stats on and the programs' run
# counts and times taken around it (BENCH_STATS_ROUNDS rounds).
#
# Sections, V the variant, S the shape, I the repeat:
#   run V S I     the measured kvmwalk's output (its "time" line), rc
#   check V S I   agent: a scrape after the run; bpftrace: nothing here
#   progs V S I.0 / .1   bpftool -j prog show around the stats run
#   stats V S I   the stats run's kvmwalk output
#   bpftrace I    bpftrace's maps at exit (per pid)
. /lib/kue-scenario.sh

ROUNDS=${BENCH_ROUNDS:-200}
WARM=${BENCH_WARM_ROUNDS:-20}
STATS_ROUNDS=${BENCH_STATS_ROUNDS:-50}
VARIANTS=${BENCH_VARIANTS:-none naive-fentry own-fentry agent-fentry naive-kprobe own-kprobe agent-kprobe bpftrace}

# SCHED_FIFO: see walk() in tests/vm/scenarios/lib.sh.
kvmwalk_run() {
	chrt -f 50 kvmwalk -name "guest=$1" --time $2 --rounds "$3" \
		>/tmp/kvmwalk.out 2>&1
	echo "rc=$?" >>/tmp/kvmwalk.out
}

# start V: attach what variant V runs; stop: detach it
start() {
	echo "bench: start $1"
	tool=
	# the readiness line is waited for in this file: none from before
	rm -f /tmp/tool.out
	case $1 in
	none) return 0 ;;
	naive-*) floor --attach=${1#naive-} >/tmp/tool.out 2>/tmp/agent.err & ;;
	own-*)
		floor --attach=${1#own-} --hooks=agent \
			>/tmp/tool.out 2>/tmp/agent.err & ;;
	agent-*) agent --attach=${1#agent-} ;;
	bpftrace)
		bpftrace -B line /bench/walk.bt \
			>/tmp/tool.out 2>/tmp/agent.err & ;;
	esac
	[ -n "$tool" ] || tool=$!
	case $1 in
	naive-*|own-*) wait_serving $tool 600 grep -q attached /tmp/tool.out ;;
	bpftrace) wait_serving $tool 3000 grep -q attached /tmp/tool.out ;;
	esac
}
agent() {
	kvm-unsync-exporter "$@" --web.listen-address="$ADDR" \
		>/dev/null 2>/tmp/agent.err &
	tool=$!
	wait_serving $tool 600 scrape
}
stop() {
	[ -n "$tool" ] || return 0
	echo "bench: stop"
	# SIGTERM: a background job of a shell without job control starts
	# with SIGINT ignored, and bpftrace keeps it so
	kill -TERM $tool
	_s=0
	while grep -q '^State:[^Z]*$' /proc/$tool/status 2>/dev/null; do
		_s=$((_s + 1))
		if [ $_s -eq 600 ]; then
			begin "stuck $1"
			grep State /proc/$tool/status
			for t in /proc/$tool/task/*; do
				echo "$t"; cat $t/stack
			done
			end "stuck $1"
			kill -KILL $tool
		fi
		sleep 0.1
	done
	wait $tool
	tool=
	echo "bench: stopped"
}

# host PARAMS: kvm_amd loaded with PARAMS (comma-separated).  Only
# kvm_amd goes: the probes are on kvm.ko's functions and stay attached.
amd=npt=0
host() {
	[ "$1" != "$amd" ] || return 0
	echo "bench: kvm_amd $1"
	rmmod kvm_amd || exit 1
	load-kvm $(echo "$1" | tr , ' ') || exit 1
	amd=$1
}

# one V S ARGS AMD I: shape S under variant V on kvm_amd AMD, repeat I
one() {
	v=$1 s=$2 args=$(echo "$3" | tr , ' ') i=$5
	host "$4"
	kvmwalk_run warmup "$args" "$WARM"
	echo 0 >/proc/sys/kernel/bpf_stats_enabled
	kvmwalk_run "$s" "$args" "$ROUNDS"
	begin "run $v $s $i"
	cat /tmp/kvmwalk.out
	end "run $v $s $i"
	case $v in agent-*)
		begin "check $v $s $i"
		scrape
		end "check $v $s $i"
	esac
	[ "$v" != none ] || return 0
	echo 1 >/proc/sys/kernel/bpf_stats_enabled
	begin "progs $v $s $i.0"
	bpftool -j prog show
	echo
	end "progs $v $s $i.0"
	kvmwalk_run "$s-stats" "$args" "$STATS_ROUNDS"
	begin "progs $v $s $i.1"
	bpftool -j prog show
	echo
	end "progs $v $s $i.1"
	echo 0 >/proc/sys/kernel/bpf_stats_enabled
	begin "stats $v $s $i"
	cat /tmp/kvmwalk.out
	end "stats $v $s $i"
}

# A first pass nobody measures: the kernel's own code paths translated.
kvmwalk_run warmup "--tables 40" "$WARM"

n=$(echo $VARIANTS | wc -w)
i=1
while [ $i -le "${BENCH_REPEAT:-3}" ]; do
	# rotate: repeat I starts at variant I
	order=$(echo $VARIANTS $VARIANTS | tr ' ' '\n' |
		sed -n "$(( (i - 1) % n + 1 )),$(( (i - 1) % n + n ))p")
	for v in $order; do
		start $v
		# not a pipe: host()'s kvm_amd state outlives the loop
		echo "$BENCH_SHAPES" | tr ';' '\n' >/tmp/shapes
		while IFS=: read -r s args a; do
			one $v $s "$args" "$a" $i </dev/null
		done </tmp/shapes
		stop $v
		if [ "$v" = bpftrace ]; then
			begin "bpftrace $i"
			cat /tmp/tool.out
			end "bpftrace $i"
		fi
	done
	i=$((i + 1))
done
