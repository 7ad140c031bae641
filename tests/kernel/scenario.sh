# VM lab scenario for tests/kernel/test_patched.py: run kvmwalk shapes on a
# lab kernel (stock or patched, KVM built in) and count, per shape, with the
# kernel's own instruments only (no BPF):
#   - kvmmmu tracepoints: kvm_mmu_unsync_page, kvm_mmu_sync_page (fired for
#     every page synced, and for every unsync page zapped),
#     kvm_mmu_prepare_zap_page;
#   - kprobe events on mmu_sync_children, __mmu_unsync_walk and
#     mmu_zap_unsync_children (entry and return): calls, walk frames, the
#     top-level walks (recursion depth 0) and their returns, -ENOSPC, and
#     per mmu_sync_children call its top-level walk returns and its own
#     return (-EINTR when a can_yield=false sync had to stop).
#
# Output sections:
#   "probes"  one JSON line per function of interest: its kallsyms names
#   "btf"     the page vector's type as vmlinux BTF has it (needs bpftool)
#   "kernel"  one JSON line per shape (trace_shape in tests/vm/scenarios/
#             lib.sh, the trace read by tests/vm/scenarios/walk_trace.awk)
# KUE_SHAPES="name:args;name:args" (args with ',' for ' ') picks the shapes.
# Exit status: non-zero if a kvmwalk run failed, the trace lost events or a
# probe could not be placed.

. /lib/kue-scenario.sh

T=/sys/kernel/tracing
fail=0

FUNCS="mmu_sync_children __mmu_unsync_walk mmu_unsync_walk
mmu_unsync_walk_and_clear mmu_pages_clear_parents mmu_pages_add
mmu_pages_first mmu_pages_next mmu_zap_unsync_children
kvm_unlink_unsync_page kvm_mmu_sync_roots"

pattern=$(printf '%s' "$FUNCS" | tr -s ' \n' '||')
grep -E " ($pattern)(\.[a-z]+\.[0-9]+)*$" /proc/kallsyms | awk '{ print $3 }' >/tmp/ksyms

echo "=== BEGIN probes ==="
for f in $FUNCS; do
	names=$(ksyms "$f" | awk '{ printf "%s\"%s\"", (n++ ? "," : ""), $1 }')
	echo "{\"function\":\"$f\",\"kallsyms\":[$names]}"
done
echo "=== END probes ==="

echo "=== BEGIN btf ==="
if command -v bpftool >/dev/null; then
	bpftool btf dump file /sys/kernel/btf/vmlinux format c 2>/dev/null |
		awk '/^struct (kvm_mmu_pages|kvm_mmu_page_vec|mmu_page_and_offset|mmu_page_path) \{/ { p = 1 }
			p { print } p && /^\};/ { p = 0 }'
fi
echo "=== END btf ==="

add_probe() {
	echo "$1" >>$T/kprobe_events || { echo "kernel-scenario: cannot place probe: $1"; fail=1; }
}

SYNC_CHILDREN=$(ksym mmu_sync_children)
WALK=$(ksym __mmu_unsync_walk)
ZAP_CHILDREN=$(ksym mmu_zap_unsync_children)
if [ -z "$SYNC_CHILDREN" ] || [ -z "$WALK" ] || [ -z "$ZAP_CHILDREN" ]; then
	echo "kernel-scenario: walk functions missing from kallsyms"
	fail=1
fi
echo >$T/kprobe_events
add_probe "p:kue/sc_enter $SYNC_CHILDREN"
add_probe "r16:kue/sc_exit $SYNC_CHILDREN ret=\$retval:s32"
add_probe "p:kue/walk_enter $WALK"
add_probe "r32:kue/walk_exit $WALK ret=\$retval:s32"
add_probe "p:kue/zap_enter $ZAP_CHILDREN"
add_probe "r16:kue/zap_exit $ZAP_CHILDREN ret=\$retval:s32"
echo 1 >$T/events/kue/enable || fail=1
for e in kvm_mmu_unsync_page kvm_mmu_sync_page kvm_mmu_prepare_zap_page; do
	echo 1 >$T/events/kvmmmu/$e/enable || fail=1
done
echo 0 >$T/options/context-info
echo 16384 >$T/buffer_size_kb
echo 0 >$T/tracing_on

echo "${KUE_SHAPES:-t8:--tables 8}" | tr ';' '\n' >/tmp/shapes
echo "=== BEGIN kernel ==="
while IFS=: read -r name args; do
	[ -n "$name" ] || continue
	args=$(echo "$args" | tr ',' ' ')
	trace_shape kernel-scenario "$name" "$args" || fail=1
done </tmp/shapes
echo "=== END kernel ==="

echo 0 >$T/events/enable
echo >$T/kprobe_events
exit $fail
