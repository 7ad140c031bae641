#!/bin/sh
# Inside the lab VM (KVM loaded, npt=0): what each way of watching the
# walk costs a real Linux guest's whole run (tests/vm/labguest.py: QEMU,
# Debian's kernel, a busybox init that forks and execs BENCH_GUEST_FORKS
# short processes and powers off).  The run is timed from just before
# QEMU is exec'd to its exit, in the trace clock (mono: under -icount the
# lab's instruction clock), after the tool has loaded and attached, so
# loading programs is not counted (run_guest in /lib/kue-guest.sh).
#
# One unmeasured guest run first, then BENCH_GUEST_REPEAT times, in an
# order that rotates each time, every variant of BENCH_VARIANTS:
#   none            no BPF at all
#   naive-fentry    the naive floor, build/floor --attach=fentry:
#                   do-nothing fentry/fexit on every hook a plain agent
#                   needs, and the kvmmmu raw tracepoints (bench/floor.c)
#   naive-kprobe    the same with kprobe/kretprobe
#   agent-fentry    the agent, --attach=fentry
#   agent-kprobe    the agent, --attach=kprobe
#   bpftrace        Debian's bpftrace running bench/walk.bt
# Sections, V the variant, I the repeat:
#   run V I     QEMU's output, rc=, pid=, ns= (the guest's whole run)
#   check V I   agent: a scrape after QEMU exited; bpftrace: its maps
#   tool V I    the tool's stderr if it failed to start
. /lib/kue-scenario.sh
. /lib/kue-guest.sh

FORKS=${BENCH_GUEST_FORKS:-100}
VARIANTS=${BENCH_VARIANTS:-none naive-fentry naive-kprobe agent-fentry agent-kprobe bpftrace}

# start V: attach what variant V runs (its pid in $tool); stop: detach it
start() {
	tool=
	rm -f /tmp/tool.out
	case $1 in
	none) return 0 ;;
	naive-*) floor --attach=${1#naive-} >/tmp/tool.out 2>/tmp/agent.err & ;;
	agent-fentry | agent-kprobe)
		kvm-unsync-exporter --attach="${1#agent-}" \
			--web.listen-address="$ADDR" >/dev/null 2>/tmp/agent.err & ;;
	bpftrace)
		bpftrace -B line /bench/walk.bt >/tmp/tool.out 2>/tmp/agent.err & ;;
	esac
	tool=$!
	case $1 in
	agent-*) wait_serving $tool 600 scrape ;;
	bpftrace) wait_serving $tool 3000 grep -q attached /tmp/tool.out ;;
	*) wait_serving $tool 600 grep -q attached /tmp/tool.out ;;
	esac
}
stop() {
	[ -n "$tool" ] || return 0
	# SIGTERM: bpftrace, a background job here, keeps SIGINT ignored
	kill -TERM $tool
	wait $tool
	tool=
}

echo mono >$T/trace_clock
echo 0 >$T/events/enable
echo 1 >$T/tracing_on

# A first run nobody measures: QEMU, the guest's kernel and KVM's paths
# paged in and translated.
run_guest warmup "$FORKS" /tmp/guest.out

n=$(echo $VARIANTS | wc -w)
i=1
while [ $i -le "${BENCH_GUEST_REPEAT:-3}" ]; do
	order=$(echo $VARIANTS $VARIANTS | tr ' ' '\n' |
		sed -n "$(( (i - 1) % n + 1 )),$(( (i - 1) % n + n ))p")
	for v in $order; do
		echo "bench: $v $i"
		start $v
		echo >$T/trace
		run_guest "bench-$v" "$FORKS" /tmp/guest.out
		begin "run $v $i"
		cat /tmp/guest.out
		echo "pid=$(cat /tmp/qemu.pid)"
		echo "ns=$(guest_time)"
		end "run $v $i"
		case $v in agent-*)
			begin "check $v $i"
			scrape
			end "check $v $i"
		esac
		stop
		if [ "$v" = bpftrace ]; then
			begin "check $v $i"
			cat /tmp/tool.out
			end "check $v $i"
		fi
	done
	i=$((i + 1))
done
