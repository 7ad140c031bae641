#!/bin/sh
# Inside the lab VM, booted without KVM: --check refuses with one line
# saying what to do; the daemon, started before KVM like on a host that
# boots before its VMs come, serves its own metrics and waits, then
# attaches once KVM is loaded, and counts a VM run after that.
#   nokvm            --check's exit code and stderr
#   waiting          /metrics while KVM is not loaded
#   waiting log      the daemon's stderr by then
#   waiting threads  each thread's capabilities by then
#   attached         /metrics once the walk hooks are attached after load-kvm
#   attached threads each thread's capabilities then
#   shape late       a kvmwalk run (pid=, rc=)
#   metrics late     /metrics after it
#   reload kvm_amd   rmmod kvm_amd and load it again under the daemon
#   shape reloaded   a kvmwalk run after that
#   metrics reloaded /metrics after it
#   rmmod kvm attached  rmmod kvm's exit code while the daemon runs
#   shutdown         exit code after SIGTERM, pins left, the daemon's stderr
#   rmmod kvm stopped   rmmod kvm's exit code after it stopped
PIN=/sys/fs/bpf/kvm_unsync
. /lib/kue-scenario.sh
attached() {
	scrape 2>/dev/null | grep -qE \
		'^kvm_unsync_probe_attached\{probe="__mmu_unsync_walk",mode="(fentry|kprobe)"\} 1$'
}

begin nokvm
kvm-unsync-exporter --check >/tmp/out 2>/tmp/err
echo "rc=$?"
cat /tmp/err
end nokvm

kvm-unsync-exporter --web.listen-address="$ADDR" >/dev/null 2>/tmp/agent.err &
AGENT=$!
waiting_and_serving() { grep -q "waiting" /tmp/agent.err && scrape; }
wait_serving $AGENT 300 waiting_and_serving
begin waiting
scrape
end waiting
begin "waiting log"
cat /tmp/agent.err
end "waiting log"
begin "waiting threads"
threads $AGENT
end "waiting threads"

load-kvm >/dev/null 2>&1 || echo "load-kvm failed"
# The daemon looks once a second; attaching takes a few more under TCG.
i=0
until attached; do
	i=$((i + 1))
	if [ $i -gt 600 ] || ! kill -0 $AGENT 2>/dev/null; then
		begin attach-failed
		cat /tmp/agent.err
		scrape
		end attach-failed
		exit 1
	fi
	sleep 0.1
done
begin attached
scrape
end attached
begin "attached threads"
threads $AGENT
end "attached threads"

walk late --tables 8
begin "metrics late"
scrape
end "metrics late"

# A KVM developer reloads the vendor module (new parameters, a rebuilt
# kvm-amd.ko) under the running agent: its hooks live in kvm.ko, so they
# stay; kvm.ko itself is held by them.
begin "reload kvm_amd"
rmmod kvm_amd
echo "rmmod_rc=$?"
load-kvm
echo "load_rc=$?"
end "reload kvm_amd"
walk reloaded --tables 8
begin "metrics reloaded"
scrape
end "metrics reloaded"
rmmod kvm_amd
rmmod kvm 2>/tmp/rmmod.err
rc=$?
begin "rmmod kvm attached"
echo "rc=$rc"
cat /tmp/rmmod.err
end "rmmod kvm attached"

kill -TERM $AGENT
wait $AGENT
rc=$?
begin shutdown
echo "rc=$rc"
echo "pins=$(ls $PIN 2>/dev/null | wc -l)"
cat /tmp/agent.err
end shutdown
rmmod kvm
rc=$?
begin "rmmod kvm stopped"
echo "rc=$rc"
end "rmmod kvm stopped"
