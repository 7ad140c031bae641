#!/bin/sh
# Inside the lab VM: KVM's own stats in --batch and --record, with a VM
# that is still there.  The agent runs; beside it (its pins, read-only)
# two views, "held" and "after", run --batch --record.  Each shape's
# kvmwalk prints KVM's stats (--stats) and stops itself with its VM still
# there (--hold), so nothing in it moves while the views read it.  Then:
# a whole --batch block of "held" inside the hold, SIGINT to "held" (its
# record written while the VM is there), SIGCONT to kvmwalk (it destroys
# its VM and exits), a whole block of "after" since, SIGINT to "after".
# Sections, for each shape NAME:
#   shape NAME          kvmwalk's output (its stats line), then its exit code
#   batch NAME held     held's last block, begun and ended in the hold
#   record NAME held    held's record, and its exit code in "view NAME held"
#   batch NAME after    after's last block, begun after the VM was destroyed
#   record NAME after   after's record, and its exit code in "view NAME after"
#
# Environment (from the test): KUE_SHAPES ("name:arg,arg;..." with commas
# for spaces).

. /lib/kue-scenario.sh

kvm-unsync-exporter --web.listen-address="$ADDR" 2>/tmp/agent.err &
AGENT=$!
wait_serving $AGENT 100 scrape

# blocks FILE: how many --batch blocks FILE holds.
blocks() { grep -c '^kvm-unsync-exporter: .* sorted by' "$1"; }

# more_blocks FILE N: wait until FILE holds more than N blocks, so the
# last one began after the moment N was counted.
more_blocks() {
	_mb_i=0
	until [ "$(blocks "$1")" -gt $(($2 + 1)) ]; do
		_mb_i=$((_mb_i + 1))
		[ $_mb_i -gt 600 ] && break
		sleep 0.1
	done
}

# last_block FILE: the last whole block of FILE.
last_block() {
	awk '/^kvm-unsync-exporter: .* sorted by/ { b = "" } { b = b $0 "\n" }
	     END { printf "%s", b }' "$1"
}

# view TAG: start a --batch --record view beside the agent, as $VIEW.
view() {
	# The redirection below truncates in the child, after the fork: the
	# grep in wait_serving could still read the last shape's block and
	# start the walk before this view's first read, its record's base.
	rm -f /tmp/"$1".out /tmp/"$1".err
	kvm-unsync-exporter --batch --interval=0.5 --record=/tmp/"$1".json \
		>/tmp/"$1".out 2>/tmp/"$1".err &
	VIEW=$!
	wait_serving $VIEW 600 grep -q "sorted by" /tmp/"$1".out
}

# stop_view PID TAG NAME: SIGINT it and print its record and exit code.
stop_view() {
	kill -INT "$1"
	wait "$1"
	_sv_rc=$?
	begin "record $3 $2"
	cat /tmp/"$2".json
	end "record $3 $2"
	begin "view $3 $2"
	echo "rc=$_sv_rc"
	cat /tmp/"$2".err
	end "view $3 $2"
}

IFS=';'
for spec in $KUE_SHAPES; do
	name=${spec%%:*}
	args=$(echo "${spec#*:}" | tr ',' ' ')
	view held
	HELD=$VIEW
	view after
	AFTER=$VIEW
	IFS=' '
	# shellcheck disable=SC2086 # one word per argument
	hold_walk "$name" $args
	IFS=';'
	more_blocks /tmp/held.out "$(blocks /tmp/held.out)"
	begin "batch $name held"
	last_block /tmp/held.out
	end "batch $name held"
	stop_view $HELD held "$name"
	release_walk "$name"
	more_blocks /tmp/after.out "$(blocks /tmp/after.out)"
	begin "batch $name after"
	last_block /tmp/after.out
	end "batch $name after"
	stop_view $AFTER after "$name"
done
IFS=' '

stop_agent $AGENT
