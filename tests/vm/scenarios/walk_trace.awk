# One tracefs trace of a kvmwalk run in (context-info off, comments
# removed), the JSON fields of that run out (no braces).  Shared by the
# scenarios that measure the walk with the kernel's own instruments and no
# BPF: tests/vm/scenarios/selfcheck.sh and tests/kernel/scenario.sh
# (lab.py installs it as /lib/kue-walk-trace.awk).
#
# Events, as those scenarios name them (a scenario that did not place one
# counts none):
#   kue/sc_enter, sc_exit       mmu_sync_children entry, return (ret=)
#   kue/walk_enter, walk_exit   __mmu_unsync_walk entry, return (ret=)
#   kue/zap_enter, zap_exit     mmu_zap_unsync_children entry, return
#   kue/clear_parents, kue/sync_roots   mmu_pages_clear_parents and
#                               kvm_mmu_sync_roots entries
#   kvmmmu tracepoints: kvm_mmu_unsync_page, kvm_mmu_sync_page,
#   kvm_mmu_get_page, kvm_mmu_prepare_zap_page
#   function tracer lines ("func <-caller")
# -v probe_args=1: the entry probes also read level= and can_yield= of
# mmu_sync_children and nr= (pvec->nr) of __mmu_unsync_walk, and the
# fields made of them are printed.
#
# Walk frames are attributed to the innermost mmu_sync_children ("sync")
# or mmu_zap_unsync_children ("zap") call active, "other" otherwise.
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
BEGIN { sp = 0; depth = 0; maxdepth = 0; cur = 0 }
$2 ~ /^<-/ { ft[$1]++; next }
{ ev = $1; sub(/:$/, "", ev) }
ev == "sc_enter" {
	stack[++sp] = "sync"; sc++
	if (field("can_yield") == "0") sc_noyield++
	lvl[field("level")]++
	cur++; walks_of[cur] = 0; tops[cur] = ""; rets[cur] = "null"
	next
}
ev == "sc_exit" {
	r = field("ret")
	rets[cur] = r + 0
	if (r != "0") sc_eintr++
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
	if (r == -28) enospc[c]++
	if (depth == 0) {
		if (r == -28) restarts[c]++
		else if (r == 0) top_zero[c]++
		else if (r > 0) leaves[c] += r
		if (c == "sync") tops[cur] = tops[cur] (tops[cur] == "" ? "" : ",") r
	}
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
END {
	list = ""; tlist = ""; rlist = ""
	for (i = 1; i <= cur; i++) {
		list = list (i > 1 ? "," : "") walks_of[i]
		tlist = tlist (i > 1 ? "," : "") "[" tops[i] "]"
		rlist = rlist (i > 1 ? "," : "") rets[i]
	}
	printf "\"sync_children\":%d,\"sync_children_eintr\":%d,", sc, sc_eintr
	if (probe_args)
		printf "\"sync_children_noyield\":%d,\"sync_children_root_levels\":%s,", sc_noyield, obj(lvl)
	printf "\"sync_roots\":%d,\"walks_per_sync_children\":[%s],", sr, list
	printf "\"sync_walk_returns\":[%s],\"sync_children_returns\":[%s],", tlist, rlist
	printf "\"walk_frames\":%s,\"walk_frames_enospc\":%s,", obj(frames), obj(enospc)
	printf "\"walks\":%s,\"restarts\":%s,\"walks_zero\":%s,\"walk_leaves\":%s,", obj(walks), obj(restarts), obj(top_zero), obj(leaves)
	printf "\"walk_max_depth\":%d,", maxdepth
	if (probe_args)
		printf "\"walk_max_nr_at_entry\":%d,\"walk_top_nr_not_1\":%d,", maxnr, bad_nr
	printf "\"clear_parents\":%s,\"zap_unsync_children_calls\":%d,", obj(cp), zc
	printf "\"tp_unsync_page\":%d,\"tp_sync_page\":%d,\"tp_sync_page_by_context\":%s,", tp_unsync, tp_sync_all, obj(tp_sync)
	printf "\"tp_get_page_new\":%d,\"tp_get_page_existing\":%d,", gp_new, gp_old
	printf "\"tp_prepare_zap_page\":%d,\"tp_prepare_zap_page_unsync\":%d,\"tp_prepare_zap_page_levels\":%s,", zaps, zap_unsync, obj(zl)
	printf "\"ftrace_hits\":%s", obj(ft)
}
