#!/bin/sh
# Inside the lab VM: the agent serves on the VM's network card, which QEMU
# forwards to a host port, and a Prometheus server on the host scrapes it
# while kvmwalk runs (tests/vm/test_prometheus_lab.py).  The host paces the
# scenario through a second forwarded port, 10191: the scenario waits for a
# connection there, answering "go", before the shapes (the host has seen
# Prometheus scrape the agent by then), and again at the end, answering
# "done" (the host has what it needs).  It prints:
#   net          the card, once Debian's e1000 driver (/lib/e1000.ko) is in
#   shape NAME   kvmwalk's output: "kvmwalk: ok pid=..." if it succeeded
#   shutdown     the agent's exit code after SIGTERM, and its stderr
# and the line "prometheus lab: shapes done" once every shape has exited.
#
# The shapes run at once, each kvmwalk in the background of a holder that
# never reaps it: a VMM that has exited stays a zombie, its /proc entry
# stays, and the agent keeps publishing its final counts until the end (a
# reaped VM is dropped after one more scrape, which Prometheus might miss).
# Its exit code is never collected: the "ok" line is the proof.
#
# Environment (from the test): KUE_SHAPES ("name:arg,arg;..." with commas
# for spaces), KUE_WAIT (seconds to wait for each of the host's
# connections).

ADDR=0.0.0.0:10190
WAIT=${KUE_WAIT:-120}
. /lib/kue-scenario.sh

insmod /lib/e1000.ko || exit 1
ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up || exit 1
begin net
ifconfig eth0
end net

kvm-unsync-exporter --web.listen-address="$ADDR" >/dev/null 2>/tmp/agent.err &
AGENT=$!
wait_serving $AGENT 300 scrape

# host_says WORD: wait for the host's connection on 10191 and answer WORD.
host_says() {
	if ! echo "$1" | timeout "$WAIT" nc -l -p 10191 >/dev/null; then
		echo "prometheus lab: the host never connected for '$1' in ${WAIT}s"
		exit 1
	fi
}

host_says "go"

# hold NAME ARGS...: kvmwalk as VM NAME, its pid in /tmp/pid.NAME, its
# output in /tmp/walk.NAME; the holder (its parent) is in HOLDERS.
HOLDERS=
hold() {
	_h_name=$1
	shift
	(
		kvmwalk -name "guest=$_h_name" "$@" >/tmp/walk."$_h_name" 2>&1 &
		echo $! >/tmp/pid."$_h_name"
		exec sleep 100000
	) &
	HOLDERS="$HOLDERS $!"
}

# exited PID: the process is a zombie (or gone).
exited() {
	[ -e /proc/"$1"/stat ] || return 0
	[ "$(sed 's/.*) \(.\).*/\1/' /proc/"$1"/stat)" = Z ]
}

NAMES=
IFS=';'
for spec in $KUE_SHAPES; do
	name=${spec%%:*}
	args=$(echo "${spec#*:}" | tr ',' ' ')
	IFS=' '
	# shellcheck disable=SC2086 # one word per argument
	hold "$name" $args
	IFS=';'
	NAMES="$NAMES $name"
done
IFS=' '

for name in $NAMES; do
	until [ -s /tmp/pid."$name" ]; do sleep 0.1; done
	pid=$(cat /tmp/pid."$name")
	until exited "$pid"; do sleep 0.2; done
	begin "shape $name"
	cat /tmp/walk."$name"
	end "shape $name"
done
echo "prometheus lab: shapes done"

host_says "done"

# shellcheck disable=SC2086 # one pid per word
kill $HOLDERS
stop_agent $AGENT
