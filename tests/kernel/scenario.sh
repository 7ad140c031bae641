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
#   "kernel"  one JSON line per shape
# KUE_SHAPES="name:args;name:args" (args with ',' for ' ') picks the shapes.
# Exit status: non-zero if a kvmwalk run failed, the trace lost events or a
# probe could not be placed.

T=/sys/kernel/tracing
fail=0

FUNCS="mmu_sync_children __mmu_unsync_walk mmu_unsync_walk
mmu_unsync_walk_and_clear mmu_pages_clear_parents mmu_pages_add
mmu_pages_first mmu_pages_next mmu_zap_unsync_children
kvm_unlink_unsync_page kvm_mmu_sync_roots"

pattern=$(printf '%s' "$FUNCS" | tr -s ' \n' '||')
grep -E " ($pattern)(\.[a-z]+\.[0-9]+)*$" /proc/kallsyms | awk '{ print $3 }' >/tmp/ksyms

# kallsyms names of $1: exact, or compiler clones (.isra.0, .part.0, ...).
ksyms() {
	awk -v f="$1" '$1 == f || index($1, f ".") == 1' /tmp/ksyms
}
ksym() {
	ksyms "$1" | head -n 1
}

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

# One trace in, the JSON fields of one shape out (no braces).  Walk frames
# are attributed to the innermost mmu_sync_children ("sync") or
# mmu_zap_unsync_children ("zap") call active, "other" otherwise.
cat >/tmp/analyze.awk <<'EOF'
function field(name,    i) {
	for (i = 2; i <= NF; i++)
		if (index($i, name "=") == 1)
			return substr($i, length(name) + 2)
	return ""
}
function ctx() { return sp > 0 ? stack[sp] : "other" }
function obj(a,    k, s, n) {
	s = ""; n = 0
	for (k in a) s = s (n++ ? "," : "") "\"" k "\":" a[k]
	return "{" s "}"
}
BEGIN { sp = 0; depth = 0; maxdepth = 0; ncalls = 0 }
{ ev = $1; sub(/:$/, "", ev) }
ev == "sc_enter" { stack[++sp] = "sync"; sc++; ncalls++; tops[ncalls] = ""; rets[ncalls] = "null"; next }
ev == "sc_exit" { rets[ncalls] = field("ret") + 0; if (rets[ncalls] != 0) sc_nonzero++; sp--; next }
ev == "zap_enter" { stack[++sp] = "zap"; zc++; next }
ev == "zap_exit" { sp--; next }
ev == "walk_enter" {
	frames[ctx()]++
	depth++; if (depth > maxdepth) maxdepth = depth
	next
}
ev == "walk_exit" {
	depth--; c = ctx(); r = field("ret") + 0
	if (r == -28) enospc[c]++
	if (depth == 0) {
		walks[c]++
		if (r == -28) restarts[c]++
		else if (r == 0) top_zero[c]++
		else leaves[c] += r
		if (c == "sync") tops[ncalls] = tops[ncalls] (tops[ncalls] == "" ? "" : ",") r
	}
	next
}
ev == "kvm_mmu_unsync_page" { tp_unsync++; next }
ev == "kvm_mmu_sync_page" { tp_sync++; tp_sync_ctx[ctx()]++; next }
ev == "kvm_mmu_prepare_zap_page" { zaps++; next }
END {
	list = ""; rlist = ""
	for (i = 1; i <= ncalls; i++) {
		list = list (i > 1 ? "," : "") "[" tops[i] "]"
		rlist = rlist (i > 1 ? "," : "") rets[i]
	}
	printf "\"sync_children\":%d,\"sync_children_nonzero\":%d,\"zap_children\":%d,", sc, sc_nonzero, zc
	printf "\"walk_frames\":%s,\"walk_frames_enospc\":%s,\"walk_max_depth\":%d,", obj(frames), obj(enospc), maxdepth
	printf "\"walks\":%s,\"restarts\":%s,\"walks_zero\":%s,\"walk_leaves\":%s,", obj(walks), obj(restarts), obj(top_zero), obj(leaves)
	printf "\"sync_walk_returns\":[%s],\"sync_children_returns\":[%s],", list, rlist
	printf "\"tp_unsync_page\":%d,\"tp_sync_page\":%d,\"tp_sync_page_by_context\":%s,\"tp_prepare_zap_page\":%d", tp_unsync, tp_sync, obj(tp_sync_ctx), zaps
}
EOF

stats_json() {
	sed -n 's/^kvmwalk: stats //p' "$1" |
		awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); printf "%s\"%s\":%s", (i > 1 ? "," : ""), kv[1], kv[2] } }'
}

echo "${KUE_SHAPES:-t8:--tables 8}" | tr ';' '\n' >/tmp/shapes
echo "=== BEGIN kernel ==="
while IFS=: read -r name args; do
	[ -n "$name" ] || continue
	args=$(echo "$args" | tr ',' ' ')
	echo "kernel-scenario: $(cut -d' ' -f1 /proc/uptime)s shape $name" >&2
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
		sed 's/^/kernel-scenario: kvmwalk: /' /tmp/out
	fi
	lost=$(awk '/^overrun:|^dropped events:/ { n += $NF } END { print n + 0 }' $T/per_cpu/cpu0/stats)
	[ "$lost" = 0 ] || fail=1
	printf '{"shape":"%s","args":"%s","rc":%d,"ok":%s,"trace_lost":%d,%s,"stats":{%s}}\n' \
		"$name" "$args" "$rc" "$ok" "$lost" \
		"$(grep -v '^#' $T/trace | awk -f /tmp/analyze.awk)" "$(stats_json /tmp/out)"
done </tmp/shapes
echo "=== END kernel ==="

echo 0 >$T/events/enable
echo >$T/kprobe_events
exit $fail
