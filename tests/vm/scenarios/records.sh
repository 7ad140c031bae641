#!/bin/sh
# Inside the lab VM, for make compare: one --record per workload shape.
# For each shape of KUE_SHAPES ("name:arg,arg;..." as agent.sh) the agent
# records on its own (attached by itself) while kvmwalk runs that shape
# alone, then SIGTERM writes the record:
#   shape NAME       kvmwalk's output and exit code
#   record NAME      the record of that shape's run (docs/record.md)
#   agent NAME       the recording agent's exit code and stderr
# One record per shape keeps the page vector and duration histograms,
# global in a record, per shape.

. /lib/kue-scenario.sh

IFS=';'
for spec in $KUE_SHAPES; do
	name=${spec%%:*}
	args=$(echo "${spec#*:}" | tr ',' ' ')
	IFS=' '
	# the last shape's agent.err says "recording to" too: the new agent
	# truncates it only once it runs
	rm -f /tmp/agent.err
	kvm-unsync-exporter --record=/tmp/record.json 2>/tmp/agent.err &
	AGENT=$!
	# live.c says so once its probes are attached and counting
	wait_serving $AGENT 600 grep -q "recording to" /tmp/agent.err
	# shellcheck disable=SC2086 # one word per argument
	walk "$name" $args
	kill -TERM $AGENT
	wait $AGENT
	rc=$?
	begin "record $name"
	cat /tmp/record.json
	end "record $name"
	begin "agent $name"
	echo "rc=$rc"
	cat /tmp/agent.err
	end "agent $name"
	rm -f /tmp/record.json
	IFS=';'
done
IFS=' '
