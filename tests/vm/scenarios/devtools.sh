#!/bin/sh
# Inside the lab VM: the developer's modes while kvmwalk runs.
#   batch            --batch --iterations=N --record, the agent attached by
#                    itself, while each shape of KUE_SHAPES runs
#   batch-stderr     its stderr and exit code; walked=1 if every shape
#                    ended while it still ran
#   record           the record it wrote
#   shape NAME       kvmwalk's output and exit code
# With KUE_TOP=1, then --top in tmux beside a running agent (its pins,
# read-only), while each shape of KUE_TOP_SHAPES runs:
#   top start        the screen before any VM ran
#   top syncs, top restarts, top name, top pid
#                    the screen after space (update now), then after each
#                    sort key
#   top end          --top's exit code after q, and the agent's
#   metrics after top  the agent's scrape once --top has quit
#
# Environment: KUE_SHAPES and KUE_TOP_SHAPES ("name:arg,arg;..." as
# agent.sh), KUE_ITERATIONS (--batch's blocks, 0.5 s each).

. /lib/kue-scenario.sh

# shapes SPEC: walk each "name:arg,arg" of SPEC
shapes() {
	IFS=';'
	for spec in $1; do
		name=${spec%%:*}
		args=$(echo "${spec#*:}" | tr ',' ' ')
		IFS=' '
		# shellcheck disable=SC2086
		walk "$name" $args
		IFS=';'
	done
	IFS=' '
}

# --- --batch and --record, attached by itself -------------------------------
kvm-unsync-exporter --batch --interval=0.5 --iterations="$KUE_ITERATIONS" \
	--record=/tmp/record.json >/tmp/batch.out 2>/tmp/agent.err &
BATCH=$!
# the first block: attached, counting
wait_serving $BATCH 600 grep -q "sorted by" /tmp/batch.out
shapes "$KUE_SHAPES"
walked=0
kill -0 $BATCH 2>/dev/null && walked=1
wait $BATCH
rc=$?
begin batch
cat /tmp/batch.out
end batch
begin batch-stderr
echo "rc=$rc"
echo "walked=$walked"
cat /tmp/agent.err
end batch-stderr
begin record
cat /tmp/record.json
end record

[ "$KUE_TOP" = 1 ] || exit 0

# --- --top in tmux, as a person would, beside a running agent ---------------
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts 2>/dev/null
kvm-unsync-exporter --web.listen-address="$ADDR" 2>/tmp/agent.err &
AGENT=$!
wait_serving $AGENT 100 scrape

# tmux wants the terminfo of $TERM (the test packs screen's) and a UTF-8
# locale (C.UTF-8's LC_CTYPE)
export TERM=screen
TMUX_SOCK=/tmp/tmux.sock
tm() { tmux -S $TMUX_SOCK "$@"; }
# screen TEXT NAME: wait for TEXT on the screen, then print it as section NAME
screen() {
	_s_i=0
	until tm capture-pane -p >/tmp/screen 2>&1 && grep -q -- "$1" /tmp/screen; do
		_s_i=$((_s_i + 1))
		[ $_s_i -gt 300 ] && break
		sleep 0.1
	done
	begin "$2"
	cat /tmp/screen
	end "$2"
}

# a shell in a terminal, and the command typed into it
tm new-session -d -x 160 -y 40
tm send-keys "kvm-unsync-exporter --top --interval=3600 2>/tmp/top.err; echo rc=\$? >/tmp/top.rc" Enter
screen "sorted by syncs" "top start"
# they exit before --top looks: it names them from the agent's vm_names
WALK_FIFO=0 shapes "$KUE_TOP_SHAPES"
n=$(echo "$KUE_TOP_SHAPES" | tr ';' '\n' | grep -c .)
tm send-keys " "
screen "$n VMs, last" "top syncs"
tm send-keys r
screen "sorted by restarts" "top restarts"
tm send-keys n
screen "sorted by name" "top name"
tm send-keys i
screen "sorted by pid" "top pid"
tm send-keys q
i=0
until [ -s /tmp/top.rc ] || [ $i -gt 300 ]; do
	i=$((i + 1))
	sleep 0.1
done
begin "metrics after top"
scrape
end "metrics after top"
kill -TERM $AGENT
wait $AGENT
arc=$?
begin "top end"
cat /tmp/top.rc
echo "agent_rc=$arc"
cat /tmp/top.err
tm kill-server 2>/dev/null
end "top end"
