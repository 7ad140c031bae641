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

# threads PID: each thread's capabilities, as test_lab.thread_caps() reads.
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
walk() {
	_w_name=$1
	shift
	chrt -f 50 kvmwalk -name "guest=$_w_name" "$@" >/tmp/kvmwalk.out 2>&1
	_w_rc=$?
	begin "shape $_w_name"
	cat /tmp/kvmwalk.out
	echo "rc=$_w_rc"
	end "shape $_w_name"
}
