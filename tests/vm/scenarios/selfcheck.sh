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
# JSON line per shape).  KUE_SHAPES="name:args;name:args" replaces the
# default shape list; KUE_SELFCHECK_TRACE=1 also prints each raw trace.
# Exit status: non-zero if a kvmwalk run failed, the trace lost events or
# a needed probe could not be placed.

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

# kallsyms names for $1: exact, or compiler clones (.isra.0, .constprop.0,
# .part.0); none if inlined everywhere.
ksyms() {
	awk -v f="$1" '$1 == f || index($1, f ".") == 1' /tmp/ksyms
}
ksym() {
	ksyms "$1" | head -n 1
}

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

# --- analysis of one trace -------------------------------------------------
# Reads the trace; prints the JSON fields for one shape (no braces).
cat >/tmp/analyze.awk <<'EOF'
function field(name,    i) {
	for (i = 2; i <= NF; i++)
		if (index($i, name "=") == 1)
			return substr($i, length(name) + 2)
	return ""
}
function ctx() { return sp > 0 ? stack[sp] : "other" }
BEGIN { sp = 0; depth = 0; maxdepth = 0; cur = 0 }
# Function tracer lines: "func <-caller".
$2 ~ /^<-/ { ft[$1]++; next }
{ ev = $1; sub(/:$/, "", ev) }
ev == "sc_enter" {
	stack[++sp] = "sync"; sc++
	if (field("can_yield") == "0") sc_noyield++
	lvl[field("level")]++
	cur++; walks_of[cur] = 0
	next
}
ev == "sc_exit" {
	if (field("ret") != "0") sc_eintr++
	sp--
	next
}
ev == "zap_enter" { stack[++sp] = "zap"; zc++; next }
ev == "zap_exit" { sp--; next }
ev == "walk_enter" {
	c = ctx(); frames[c]++
	if (depth == 0) {
		walks[c]++
		if (c == "sync") walks_of[cur]++
		if (field("nr") != "1") bad_nr++
	}
	n = field("nr") + 0; if (n > maxnr) maxnr = n
	depth++; if (depth > maxdepth) maxdepth = depth
	next
}
ev == "walk_exit" {
	depth--; c = ctx(); r = field("ret") + 0
	if (r == -28) {
		enospc[c]++
		if (depth == 0) restarts[c]++
	} else if (depth == 0 && r > 0) leaves[c] += r
	next
}
ev == "clear_parents" { cp[ctx()]++; next }
ev == "sync_roots" { sr++; next }
ev == "kvm_mmu_unsync_page" { tp_unsync++; next }
ev == "kvm_mmu_sync_page" { tp_sync[ctx()]++; tp_sync_all++; next }
ev == "kvm_mmu_get_page" { if ($NF == "new") gp_new++; else gp_old++; next }
ev == "kvm_mmu_prepare_zap_page" {
	for (i = 2; i <= NF; i++) if ($i ~ /^l[0-9]$/) zl[substr($i, 2)]++
	if ($NF == "unsync") zap_unsync++
	zaps++
	next
}
function obj(a,    k, s, n) {
	s = ""; n = 0
	for (k in a) s = s (n++ ? "," : "") "\"" k "\":" a[k]
	return "{" s "}"
}
END {
	list = ""
	for (i = 1; i <= cur; i++) list = list (i > 1 ? "," : "") walks_of[i]
	printf "\"sync_children\":%d,\"sync_children_noyield\":%d,\"sync_children_eintr\":%d,", sc, sc_noyield, sc_eintr
	printf "\"sync_children_root_levels\":%s,\"sync_roots\":%d,", obj(lvl), sr
	printf "\"walks_per_sync_children\":[%s],", list
	printf "\"walk_frames\":%s,\"walk_frames_enospc\":%s,", obj(frames), obj(enospc)
	printf "\"walks\":%s,\"restarts\":%s,\"walk_leaves\":%s,", obj(walks), obj(restarts), obj(leaves)
	printf "\"walk_max_depth\":%d,\"walk_max_nr_at_entry\":%d,\"walk_top_nr_not_1\":%d,", maxdepth, maxnr, bad_nr
	printf "\"clear_parents\":%s,\"zap_unsync_children_calls\":%d,", obj(cp), zc
	printf "\"tp_unsync_page\":%d,\"tp_sync_page\":%d,\"tp_sync_page_by_context\":%s,", tp_unsync, tp_sync_all, obj(tp_sync)
	printf "\"tp_get_page_new\":%d,\"tp_get_page_existing\":%d,", gp_new, gp_old
	printf "\"tp_prepare_zap_page\":%d,\"tp_prepare_zap_page_unsync\":%d,\"tp_prepare_zap_page_levels\":%s,", zaps, zap_unsync, obj(zl)
	printf "\"ftrace_hits\":%s", obj(ft)
}
EOF

# "kvmwalk: stats a=1 b=2" -> {"a":1,"b":2}
stats_json() {
	sed -n 's/^kvmwalk: stats //p' "$1" |
		awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); printf "%s\"%s\":%s", (i > 1 ? "," : ""), kv[1], kv[2] } }'
}

# --- the shapes ------------------------------------------------------------
shapes=${KUE_SHAPES:-$DEFAULT_SHAPES}
echo "$shapes" | tr ';' '\n' >/tmp/shapes
echo "=== BEGIN selfcheck ==="
while IFS=: read -r name args; do
	[ -n "$name" ] || continue
	echo "selfcheck: $(cut -d' ' -f1 /proc/uptime)s shape $name" >&2
	echo >$T/trace
	echo 1 >$T/tracing_on
	# shellcheck disable=SC2086
	kvmwalk $args --stats >/tmp/out 2>&1 </dev/null
	rc=$?
	echo 0 >$T/tracing_on
	ok=false
	grep -q '^kvmwalk: ok ' /tmp/out && ok=true
	if [ "$rc" != 0 ] || [ "$ok" != true ]; then
		fail=1
		sed 's/^/selfcheck: kvmwalk: /' /tmp/out
	fi
	lost=$(awk '/^overrun:|^dropped events:/ { n += $NF } END { print n + 0 }' $T/per_cpu/cpu0/stats)
	[ "$lost" = 0 ] || fail=1
	cat $T/trace >/tmp/trace
	printf '{"shape":"%s","args":"%s","rc":%d,"ok":%s,"trace_lost":%d,%s,"stats":{%s}}\n' \
		"$name" "$args" "$rc" "$ok" "$lost" \
		"$(grep -v '^#' /tmp/trace | awk -f /tmp/analyze.awk)" "$(stats_json /tmp/out)"
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
