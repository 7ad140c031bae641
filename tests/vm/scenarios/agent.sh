#!/bin/sh
# Inside the lab VM: run the agent in one attach mode, then each workload
# shape, and print what the host-side test compares with the model:
#   check            kvm-unsync-exporter --check output and exit code
#   shape NAME       kvmwalk's output and exit code
#   tp NAME          the kernel's own kvmmmu tracepoint counts for its pid
#   maps NAME        bpftool's dump of the pinned vm_stats map
#   metrics NAME     a scrape of /metrics after the shape's process exited
#   metrics final/after  two scrapes once every workload has exited
#   hists            bpftool's dump of the pinned histograms
#   trace            the agent's --trace --json output (one record per sync)
#   shutdown         agent exit code after SIGTERM and what is left pinned
#
# Environment (from the test): KUE_MODE (fentry|kprobe), KUE_SHAPES
# ("name:arg,arg;name:arg" with commas for spaces), KUE_TRACE (syncs|frames),
# KUE_AGENT_ARGS (more agent flags, space-separated; both runs get them).

PIN=/sys/fs/bpf/kvm_unsync
T=/sys/kernel/tracing

. /lib/kue-scenario.sh

begin check
# shellcheck disable=SC2086 # KUE_AGENT_ARGS: one word per flag
kvm-unsync-exporter --check --attach="$KUE_MODE" $KUE_AGENT_ARGS 2>&1
echo "rc=$?"
end check

# The layout CO-RE relocates against: KVM's own BTF when it is a module.
if [ -e /sys/kernel/btf/kvm ]; then
	begin "btf kvm_mmu_page"
	bpftool btf dump file /sys/kernel/btf/kvm format c 2>&1 |
		awk '/^struct kvm_mmu_page \{/, /^\};/'
	end "btf kvm_mmu_page"
fi

# shellcheck disable=SC2086
kvm-unsync-exporter --attach="$KUE_MODE" $KUE_AGENT_ARGS --web.listen-address="$ADDR" \
	--trace="${KUE_TRACE:-syncs}" --json >/tmp/trace.jsonl 2>/tmp/agent.err &
AGENT=$!
wait_serving $AGENT 100 scrape

# The kernel's own record of every page that goes unsync or is synced.
tp_on

IFS=';'
for spec in $KUE_SHAPES; do
	name=${spec%%:*}
	args=$(echo "${spec#*:}" | tr ',' ' ')
	echo >$T/trace
	IFS=' '
	# shellcheck disable=SC2086
	walk "$name" $args
	IFS=';'
	pid=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' /tmp/kvmwalk.out)
	tp_counts "$name" "$pid"
	# Before the scrape: the scrape after a VM's exit is its last one.
	begin "maps $name"
	bpftool -j map dump pinned $PIN/vm_stats
	end "maps $name"
	begin "metrics $name"
	scrape
	end "metrics $name"
done
IFS=' '

begin "metrics final"
scrape
end "metrics final"
# The last shape's VM was first seen dead: published twice, then dropped.
begin "metrics after"
scrape
end "metrics after"
begin hists
bpftool -j map dump pinned $PIN/hists
end hists

kill -TERM $AGENT
wait $AGENT
rc=$?
begin trace
cat /tmp/trace.jsonl
end trace
begin shutdown
echo "rc=$rc"
echo "pins=$(ls $PIN 2>/dev/null | wc -l)"
cat /tmp/agent.err
end shutdown
