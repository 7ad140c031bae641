# Sourced by the lab scenarios (lab.py installs it as /lib/kue-scenario.sh).

# Where the agent serves in every scenario (one may set its own first).
ADDR=${ADDR:-127.0.0.1:10190}
scrape() { wget -q -O - "http://$ADDR/metrics"; }

# The blocks lab.sections() reads back on the host.
begin() { echo "=== BEGIN $1 ==="; }
end() { echo "=== END $1 ==="; }

# wait_serving PID TRIES CMD...: run CMD every 0.1 s until it succeeds.  If
# the agent PID exits first, or TRIES runs out, print its stderr
# (/tmp/agent.err, where every scenario sends it) and end the scenario.
wait_serving() {
	_ws_pid=$1 _ws_tries=$2 _ws_i=0
	shift 2
	until "$@" >/dev/null 2>&1; do
		_ws_i=$((_ws_i + 1))
		if [ $_ws_i -gt "$_ws_tries" ] || ! kill -0 "$_ws_pid" 2>/dev/null; then
			begin agent-failed
			cat /tmp/agent.err
			end agent-failed
			exit 1
		fi
		sleep 0.1
	done
}

# Centiseconds since boot, for how long a step took.
uptime_cs() { sed 's/^\([0-9]*\)\.\([0-9]*\) .*/\1\2/' /proc/uptime; }

# threads PID: each thread's capabilities, as labagent.thread_caps() reads.
threads() {
	echo "pid=$1"
	for t in /proc/"$1"/task/*; do
		echo "tid=${t##*/} comm=$(cat "$t/comm")"
		grep -E '^(CapPrm|CapEff|CapBnd|NoNewPrivs):' "$t/status"
	done
}

# walk NAME [ARGS...]: kvmwalk ARGS as VM "NAME"; its output (also left in
# /tmp/kvmwalk.out) and exit code in section "shape NAME".  SCHED_FIFO: no
# tick sets need_resched under the VMM, so a can_yield=false sync never
# gives up with -EINTR half-way.  That is the scheduler's choice, not the
# walk's, and the model cannot predict it (seen under SCHED_OTHER: one
# -EINTR in a few runs).
# WALK_FIFO=0: SCHED_OTHER, for a scenario whose own process must run while
# the VMM does (cr3 shapes only: they sync with can_yield=true, no -EINTR).
walk() {
	_w_name=$1
	shift
	if [ "${WALK_FIFO:-1}" = 1 ]; then
		chrt -f 50 kvmwalk -name "guest=$_w_name" "$@" >/tmp/kvmwalk.out 2>&1
	else
		kvmwalk -name "guest=$_w_name" "$@" >/tmp/kvmwalk.out 2>&1
	fi
	_w_rc=$?
	begin "shape $_w_name"
	cat /tmp/kvmwalk.out
	echo "rc=$_w_rc"
	end "shape $_w_name"
}

# stopped PID: the process is in state T (stopped by a signal).
stopped() {
	[ "$(sed 's/.*) \(.\).*/\1/' /proc/"$1"/stat 2>/dev/null)" = T ]
}

# hold_walk NAME [ARGS...]: kvmwalk ARGS --stats --hold as VM "NAME", under
# SCHED_FIFO as walk(), in the background (its pid in WALKER, its output in
# /tmp/kvmwalk.out).  Returns once it says it got to the hold and is
# stopped there, its VM still in place and nothing in it moving, or once
# it failed and exited.
hold_walk() {
	_hw_name=$1
	shift
	chrt -f 50 kvmwalk -name "guest=$_hw_name" "$@" --stats --hold \
		>/tmp/kvmwalk.out 2>&1 </dev/null &
	WALKER=$!
	until grep -q '^kvmwalk: holding ' /tmp/kvmwalk.out && stopped "$WALKER"; do
		kill -0 "$WALKER" 2>/dev/null || break
		sleep 0.1
	done
}

# release_walk NAME: let hold_walk's kvmwalk go on (destroy its VM, exit);
# its output and exit code in section "shape NAME", as walk().
release_walk() {
	kill -CONT "$WALKER"
	wait "$WALKER"
	_rw_rc=$?
	begin "shape $1"
	cat /tmp/kvmwalk.out
	echo "rc=$_rw_rc"
	end "shape $1"
}

# logged_run N NAME ARGS: kvmwalk ARGS as VM "NAME-N"; one line for it in
# /tmp/runs (labagent.run_lines() reads them), then its output if it failed.
logged_run() {
	# shellcheck disable=SC2086
	kvmwalk -name "guest=$2-$1" $3 >/tmp/kvmwalk.out 2>&1
	_lr_rc=$?
	_lr_pid=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' /tmp/kvmwalk.out)
	echo "run $1 name=$2 pid=${_lr_pid:-none} rc=$_lr_rc args=$3" >>/tmp/runs
	[ $_lr_rc -eq 0 ] || cat /tmp/kvmwalk.out >>/tmp/runs
}

# --- the walk under the kernel's own instruments ----------------------------
# For the scenarios that measure it with no BPF (selfcheck.sh,
# tests/kernel/scenario.sh), which first keep the kallsyms names of the
# functions they probe in /tmp/ksyms.

# kallsyms names of $1: exact, or compiler clones (.isra.0, .constprop.0,
# .part.0); none if inlined everywhere.
ksyms() {
	awk -v f="$1" '$1 == f || index($1, f ".") == 1' /tmp/ksyms
}
ksym() {
	ksyms "$1" | head -n 1
}

# "kvmwalk: stats a=1 b=2" lines of file $1 -> "a":1,"b":2
stats_json() {
	sed -n 's/^kvmwalk: stats //p' "$1" |
		awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); printf "%s\"%s\":%s", (i > 1 ? "," : ""), kv[1], kv[2] } }'
}

# trace_shape WHO NAME ARGS [AWK_OPTION...]: kvmwalk ARGS --stats with
# tracing on, then one JSON line for shape NAME: its exit code, whether it
# said "kvmwalk: ok", the events the trace lost, the fields
# /lib/kue-walk-trace.awk (walk_trace.awk, run with the AWK_OPTIONs) reads
# from the trace, and kvmwalk's stats.  The trace is left in /tmp/trace.
# Returns 1 if kvmwalk failed (its output printed, each line after
# "WHO: kvmwalk: ") or the trace lost events.
trace_shape() {
	_ts_who=$1 _ts_name=$2 _ts_args=$3 _ts_t=/sys/kernel/tracing _ts_fail=0
	shift 3
	echo "$_ts_who: $(cut -d' ' -f1 /proc/uptime)s shape $_ts_name" >&2
	echo >$_ts_t/trace
	echo 1 >$_ts_t/tracing_on
	# shellcheck disable=SC2086
	kvmwalk $_ts_args --stats >/tmp/out 2>&1 </dev/null
	_ts_rc=$?
	echo 0 >$_ts_t/tracing_on
	_ts_ok=false
	grep -q '^kvmwalk: ok ' /tmp/out && _ts_ok=true
	if [ "$_ts_rc" != 0 ] || [ "$_ts_ok" != true ]; then
		_ts_fail=1
		sed "s/^/$_ts_who: kvmwalk: /" /tmp/out
	fi
	_ts_lost=$(awk '/^overrun:|^dropped events:/ { n += $NF } END { print n + 0 }' $_ts_t/per_cpu/cpu0/stats)
	[ "$_ts_lost" = 0 ] || _ts_fail=1
	grep -v '^#' $_ts_t/trace >/tmp/trace
	printf '{"shape":"%s","args":"%s","rc":%d,"ok":%s,"trace_lost":%d,%s,"stats":{%s}}\n' \
		"$_ts_name" "$_ts_args" "$_ts_rc" "$_ts_ok" "$_ts_lost" \
		"$(awk "$@" -f /lib/kue-walk-trace.awk /tmp/trace)" "$(stats_json /tmp/out)"
	return $_ts_fail
}

# tp_on: the kvmmmu sync/unsync page tracepoints on, into a buffer large
# enough for a shape (tp_counts reads it).
tp_on() {
	echo 8192 >/sys/kernel/tracing/buffer_size_kb
	echo 1 >/sys/kernel/tracing/events/kvmmmu/kvm_mmu_sync_page/enable
	echo 1 >/sys/kernel/tracing/events/kvmmmu/kvm_mmu_unsync_page/enable
}

# tp_counts NAME PID: section "tp NAME", the kvmmmu sync/unsync page events
# of PID in the trace buffer (the kernel's own count), and lost records.
tp_counts() {
	begin "tp $1"
	echo "sync_page=$(grep -c -- "-$2 .*kvm_mmu_sync_page:" /sys/kernel/tracing/trace)"
	echo "unsync_page=$(grep -c -- "-$2 .*kvm_mmu_unsync_page:" /sys/kernel/tracing/trace)"
	echo "lost=$(grep -c 'LOST' /sys/kernel/tracing/trace)"
	end "tp $1"
}

# stop_agent PID: SIGTERM the agent, wait for it, and print the "shutdown"
# section: its exit code and its stderr (/tmp/agent.err).
stop_agent() {
	kill -TERM "$1"
	wait "$1"
	_sa_rc=$?
	begin shutdown
	echo "rc=$_sa_rc"
	cat /tmp/agent.err
	end shutdown
}
