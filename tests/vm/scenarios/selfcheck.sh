# VM lab scenario: prove that kvmwalk makes KVM walk, with the kernel's own
# instruments and no BPF, and record per-shape reference counts.
#
# Needs in the VM: kvmwalk, bpftool (only to read KVM's BTF for field
# offsets).  Runs under busybox sh as /scenario (see initramfs.sh).
#
# Instruments, all in one trace buffer (tracefs):
#   - kvmmmu tracepoints: kvm_mmu_unsync_page, kvm_mmu_sync_page,
#     kvm_mmu_prepare_zap_page, kvm_mmu_get_page;
#   - kprobe events (entry and return) on mmu_sync_children,
#     __mmu_unsync_walk, mmu_zap_unsync_children, and entry probes on
#     mmu_pages_clear_parents, kvm_mmu_sync_roots: return values
#     (-ENOSPC, -EINTR), the root level, pvec->nr at entry, and the
#     nesting that tells top-level walks (restarts) from recursion;
#   - the function tracer filtered to the same functions, as a second,
#     independent hit count.  (Debian's 6.1 has no function profiler.)
#
# Output: sections "probes" (one JSON line per function of interest: in
# kallsyms under which names, traceable by ftrace) and "selfcheck" (one
# JSON line per shape: trace_shape in lib.sh, the trace read by
# walk_trace.awk).  KUE_SHAPES="name:args;name:args" replaces the
# default shape list; KUE_SELFCHECK_TRACE=1 also prints each raw trace.
# Exit status: non-zero if a kvmwalk run failed, the trace lost events or
# a needed probe could not be placed.

. /lib/kue-scenario.sh

T=/sys/kernel/tracing
fail=0

DEFAULT_SHAPES='t8:--tables 8
t12:--tables 12
t13:--tables 13
t14:--tables 14
t40_r10:--tables 40 --rounds 10
t40_d4:--tables 40 --dirs 4
pae_t20_d3:--paging pae --tables 20 --dirs 3
fault_t8:--sync fault
fault_t20_r3:--sync fault --tables 20 --rounds 3
fault_t20_d2_r2:--sync fault --tables 20 --dirs 2 --rounds 2
flood_t20:--flood-zap --tables 20
exit_t20:--exit-unsync --tables 20
exit_t40_d2:--exit-unsync --tables 40 --dirs 2
pae_flood_t20_d2:--paging pae --tables 20 --dirs 2 --flood-zap
pae_exit_t20_d2:--paging pae --tables 20 --dirs 2 --exit-unsync'

# --- which functions exist, under which names ----------------------------
# Functions the agent may hook, and helpers that are often inlined.
FUNCS="mmu_sync_children __mmu_unsync_walk mmu_unsync_walk mmu_pages_add
clear_unsync_child_bit mmu_pages_clear_parents mmu_zap_unsync_children
kvm_unlink_unsync_page kvm_mmu_sync_roots kvm_mmu_sync_prev_roots
kvm_sync_page __kvm_sync_page kvm_mmu_prepare_zap_page
__kvm_mmu_prepare_zap_page mmu_try_to_unsync_pages kvm_unsync_page
kvm_mmu_mark_parents_unsync mark_unsync"

# Reading /proc/kallsyms and available_filter_functions costs about a
# second each under emulation: keep one copy of the symbols of interest.
pattern=$(printf '%s' "$FUNCS" | tr -s ' \n' '||')
grep -E " ($pattern)(\.[a-z]+\.[0-9]+)*([[:space:]]|$)" /proc/kallsyms | awk '{ print $3 }' >/tmp/ksyms
grep -E "^($pattern)(\.[a-z]+\.[0-9]+)*([[:space:]]|$)" $T/available_filter_functions | awk '{ print $1 }' >/tmp/ftrace_syms

echo "=== BEGIN probes ==="
for f in $FUNCS; do
	names=$(ksyms "$f" | awk '{ printf "%s\"%s\"", (n++ ? "," : ""), $1 }')
	traceable=false
	s=$(ksym "$f")
	[ -n "$s" ] && grep -qx "$s" /tmp/ftrace_syms && traceable=true
	echo "{\"function\":\"$f\",\"kallsyms\":[$names],\"ftrace\":$traceable}"
done
echo "=== END probes ==="

# --- field offsets from KVM's BTF -----------------------------------------
# Byte offset of member $2 of struct $1 in the kvm module's BTF.
btf_offset() {
	bpftool btf dump file /sys/kernel/btf/kvm -B /sys/kernel/btf/vmlinux 2>/dev/null |
		awk -v s="'$1'" -v m="'$2'" '
			/^\[/ { in_s = ($2 == "STRUCT" && $3 == s) }
			in_s && $1 == m { sub("bits_offset=", "", $3); print $3 / 8; exit }'
}
ROLE_OFF=$(btf_offset kvm_mmu_page role)
UNSYNC_CHILDREN_OFF=$(btf_offset kvm_mmu_page unsync_children)
NR_OFF=$(btf_offset kvm_mmu_pages nr)
if [ -z "$ROLE_OFF" ] || [ -z "$UNSYNC_CHILDREN_OFF" ] || [ -z "$NR_OFF" ]; then
	echo "selfcheck: cannot read field offsets from /sys/kernel/btf/kvm (bpftool missing?)"
	exit 1
fi
echo "selfcheck: offsets role=$ROLE_OFF unsync_children=$UNSYNC_CHILDREN_OFF pvec.nr=$NR_OFF"

# --- probes ---------------------------------------------------------------
SYNC_CHILDREN=$(ksym mmu_sync_children)
WALK=$(ksym __mmu_unsync_walk)
CLEAR_PARENTS=$(ksym mmu_pages_clear_parents)
ZAP_CHILDREN=$(ksym mmu_zap_unsync_children)
SYNC_ROOTS=$(ksym kvm_mmu_sync_roots)

# A compiler clone may drop or reorder arguments: count it, read nothing.
args_if_plain() {
	[ "$1" = "$2" ] && echo "$3"
}

add_probe() {
	echo "$1" >>$T/kprobe_events || { echo "selfcheck: cannot place probe: $1"; fail=1; }
}

echo >$T/kprobe_events
# level = role.level (low 4 bits of the role word).
[ -n "$SYNC_CHILDREN" ] && {
	add_probe "p:kue/sc_enter $SYNC_CHILDREN $(args_if_plain "$SYNC_CHILDREN" mmu_sync_children \
		"level=+$ROLE_OFF(%si):b4@0/32 children=+$UNSYNC_CHILDREN_OFF(%si):u32 can_yield=%dx:u8")"
	add_probe "r16:kue/sc_exit $SYNC_CHILDREN ret=\$retval:s32"
}
[ -n "$WALK" ] && {
	add_probe "p:kue/walk_enter $WALK $(args_if_plain "$WALK" __mmu_unsync_walk \
		"level=+$ROLE_OFF(%di):b4@0/32 children=+$UNSYNC_CHILDREN_OFF(%di):u32 nr=+$NR_OFF(%si):u32")"
	add_probe "r32:kue/walk_exit $WALK ret=\$retval:s32"
}
[ -n "$ZAP_CHILDREN" ] && {
	add_probe "p:kue/zap_enter $ZAP_CHILDREN"
	add_probe "r16:kue/zap_exit $ZAP_CHILDREN ret=\$retval:s32"
}
[ -n "$CLEAR_PARENTS" ] && add_probe "p:kue/clear_parents $CLEAR_PARENTS"
[ -n "$SYNC_ROOTS" ] && add_probe "p:kue/sync_roots $SYNC_ROOTS"
if [ -z "$SYNC_CHILDREN" ] || [ -z "$WALK" ]; then
	echo "selfcheck: walk functions not found in kallsyms"
	fail=1
fi

echo 1 >$T/events/kue/enable || fail=1
for e in kvm_mmu_unsync_page kvm_mmu_sync_page kvm_mmu_prepare_zap_page kvm_mmu_get_page; do
	echo 1 >$T/events/kvmmmu/$e/enable || fail=1
done
: >$T/set_ftrace_filter
for s in $SYNC_CHILDREN $WALK $CLEAR_PARENTS $ZAP_CHILDREN $SYNC_ROOTS; do
	echo "$s" >>$T/set_ftrace_filter || echo "selfcheck: $s not traceable by ftrace"
done
echo function >$T/current_tracer
# Lines without task/cpu/time prefix: the event name comes first.
echo 0 >$T/options/context-info
echo 16384 >$T/buffer_size_kb
echo 0 >$T/tracing_on

# --- the shapes ------------------------------------------------------------
shapes=${KUE_SHAPES:-$DEFAULT_SHAPES}
echo "$shapes" | tr ';' '\n' >/tmp/shapes
echo "=== BEGIN selfcheck ==="
while IFS=: read -r name args; do
	[ -n "$name" ] || continue
	trace_shape selfcheck "$name" "$args" -v probe_args=1 || fail=1
	# Raw traces go after the selfcheck block, which stays JSON lines only.
	if [ "${KUE_SELFCHECK_TRACE:-0}" = 1 ]; then
		{
			echo "=== BEGIN trace $name ==="
			grep -v '^#' /tmp/trace
			echo "=== END trace $name ==="
		} >>/tmp/traces
	fi
done </tmp/shapes
echo "=== END selfcheck ==="
[ -f /tmp/traces ] && cat /tmp/traces

echo 0 >$T/events/enable
echo nop >$T/current_tracer
echo >$T/kprobe_events
exit $fail
