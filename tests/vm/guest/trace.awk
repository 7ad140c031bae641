# A tracefs trace of one Linux-guest run (context-info on: "comm-pid [cpu]
# flags time: event: fields") in, the kernel's own per-VM figures out, one
# key=value a line (tests/vm/test_guest_lab.py compares them with the
# agent's).  The trace holds QEMU's threads only (set_event_pid), so every
# count is that VM's.  Events (tests/vm/scenarios/guest.sh places them):
#   kue/sc_enter, sc_exit (ret=)     mmu_sync_children entry, return
#   kue/walk_enter, walk_exit (ret=) __mmu_unsync_walk entry, return
#   kue/zap_enter, zap_exit          mmu_zap_unsync_children entry, return
#   kue/clr_walk_N, kue/clr_cp_N    an instruction that decrements
#                                    unsync_children: a bitmap clear in the
#                                    walk, or in mmu_pages_clear_parents
#   kvmmmu: kvm_mmu_sync_page, kvm_mmu_unsync_page
# State is per thread: a sync may reschedule between walks and let
# another QEMU thread run.  A walk is in the "sync" context inside a
# mmu_sync_children call of its thread and in "zap" otherwise, as the agent
# counts it; "zap_window" says whether a mmu_zap_unsync_children call was
# active (a walk outside both would be a caller nobody expects: other=).
# Leaves: every unsync leaf of a top-level walk's page vector is unlinked
# once right after the walk, which fires kvm_mmu_sync_page: in a sync
# (kvm_unlink_unsync_page before kvm_sync_page) or a zap
# (kvm_mmu_prepare_zap_page of the leaf), so the events inside each window
# are the leaves of its walks.
function field(name,    i, n, a) {
	n = split(rest, a, " ")
	for (i = 1; i <= n; i++)
		if (index(a[i], name "=") == 1)
			return substr(a[i], length(name) + 2)
	return ""
}
function ctx(p) { return insync[p] > 0 ? "sync" : "zap" }
{
	if (!match($0, /-[0-9]+ +\[[0-9]+\]/))
		next
	head = substr($0, RSTART, RLENGTH)
	p = substr(head, 2) + 0
	rest = substr($0, RSTART + RLENGTH)
	# flags, then "seconds.micros: "
	if (!sub(/^[^:]*[0-9]: /, "", rest))
		next
	ev = rest
	sub(/:.*/, "", ev)
	pids[p] = 1
}
ev == "sc_enter" { insync[p]++; next }
ev == "sc_exit" {
	insync[p]--
	r = field("ret")
	if (r == "0") sync_ok++
	else if (r == "-4") sync_eintr++
	else sync_bad++
	next
}
ev == "zap_enter" { inzap[p]++; next }
ev == "zap_exit" { inzap[p]--; next }
ev == "walk_enter" {
	c = ctx(p)
	frames[c]++
	if (c == "zap" && !inzap[p]) other++
	depth[p]++
	next
}
ev == "walk_exit" {
	c = ctx(p)
	if (--depth[p] == 0)
		walks[c, field("ret") == "-28" ? "enospc" : "done"]++
	next
}
ev == "kvm_mmu_sync_page" {
	synced++
	if (insync[p]) leaves["sync"]++
	else if (inzap[p]) leaves["zap"]++
	next
}
ev == "kvm_mmu_unsync_page" { unsynced++; next }
ev ~ /^clr_walk_/ { clears[ctx(p), "walk"]++; next }
ev ~ /^clr_cp_/ { clears[ctx(p), "clear_parents"]++; next }
END {
	n = 0
	for (p in pids) n++
	print "threads=" n
	print "sync_calls.ok=" sync_ok + 0
	print "sync_calls.eintr=" sync_eintr + 0
	print "sync_calls.bad=" sync_bad + 0
	split("sync zap", cs, " ")
	for (i = 1; i <= 2; i++) {
		c = cs[i]
		print "walks." c ".done=" walks[c, "done"] + 0
		print "walks." c ".enospc=" walks[c, "enospc"] + 0
		print "frames." c "=" frames[c] + 0
		print "leaves." c "=" leaves[c] + 0
		print "clears." c ".walk=" clears[c, "walk"] + 0
		print "clears." c ".clear_parents=" clears[c, "clear_parents"] + 0
	}
	print "walks.other=" other + 0
	print "pages_synced=" synced + 0
	print "pages_unsynced=" unsynced + 0
}
