"""The nested shapes of SHAPES.md (kvmwalk --nested) on 6.1, with nested
paging on the host (kvm_amd npt=1 nested=1).

L1 runs on two-dimensional paging (the TDP MMU, which never walks unsync
children); its L2 runs on L1's nested page tables (NPT), which KVM shadows
with the shadow MMU (vcpu->arch.guest_mmu, role.guest_mode = 1,
kvm_init_shadow_npt_mmu).  The NPT has exactly the 4level layout of
SHAPES.md, so kvm_shapes.Guest and kvm_shapes.Vcpu model it: Vcpu's
"guest page walk" is KVM's walk of the NPT, its accesses are L2's.  What
differs from the 4level shapes is who writes the tables and what syncs
them; the ASSUMPTIONS (N1, N2, ...) below say what, with the 6.1 source
they rest on (paths relative to the kernel tree).
"""

from collections import namedtuple

import kvm_shapes
from kvm_shapes import Guest, Vcpu, kvm_class, pt_gfn, STACK_GFN
from shadow import Recorder

NestedShape = namedtuple("NestedShape", "tables dirs rounds exit_unsync")

VMCB_GFN = 0x9
HSAVE_GFN = 0xa


def make_nested_shape(tables=8, dirs=1, rounds=1, exit_unsync=False):
    s = NestedShape(tables, dirs, rounds, exit_unsync)
    validate(s)
    return s


def validate(s):
    if not 1 <= s.dirs <= 3:
        raise ValueError("dirs must be 1..3 with --nested (L2's addresses "
                         "stop at 4 GiB)")
    if s.rounds < 0:
        raise ValueError("rounds must be >= 0")
    if not 1 <= s.tables <= 511 * s.dirs:
        raise ValueError("tables must be 1..%d with dirs %d"
                         % (511 * s.dirs, s.dirs))


ASSUMPTIONS = [
    "N1 L1 runs on the TDP MMU (npt=1, kvm.tdp_mmu=Y, the 6.1 default on "
    "x86_64): its pages are not on active_mmu_pages, never unsync, and "
    "kvm_mmu_sync_roots returns at once for root_mmu (root_role.direct, "
    "mmu.c:3904).  The TDP MMU fires kvm_mmu_get_page and "
    "kvm_mmu_prepare_zap_page for its own pages too (tdp_mmu.c), which "
    "the model does not count: those two tracepoints are not compared.",
    "N2 Every nested VMRUN (enter_svm_guest_mode -> "
    "nested_vmcb02_prepare_control, svm/nested.c) and every #VMEXIT "
    "(nested_svm_vmexit) calls nested_svm_transition_tlb_flush: "
    "KVM_REQ_MMU_SYNC (svm/nested.c:476, called at :638 and :1065), "
    "handled at the next vcpu_enter_guest before "
    "kvm_mmu_reload (x86.c:10675).  After VMRUN vcpu->arch.mmu is "
    "guest_mmu (nested_svm_init_mmu_context); after #VMEXIT root_mmu "
    "(nested_svm_uninit_mmu_context), so a #VMEXIT's sync returns at once "
    "(N1).",
    "N3 The first VMRUN: guest_mmu has no root yet, kvm_mmu_sync_roots "
    "returns (!VALID_PAGE, mmu.c:3907), kvm_mmu_reload -> kvm_mmu_load "
    "allocates the 4-level shadow root for nCR3 and calls "
    "kvm_mmu_sync_roots again (root not unsync: no mmu_sync_children).  "
    "Later VMRUNs keep that root: kvm_init_shadow_npt_mmu sees the same "
    "cpu_role, kvm_mmu_new_pgd(nCR3) finds the current root usable "
    "(fast_pgd_switch mmu.c:4457 -> cached_root_find_and_keep_current mmu.c:4402), "
    "so KVM_REQ_MMU_SYNC calls mmu_sync_children(root, true) iff "
    "is_unsync_root.  nested_vmcb02_prepare_save sets L2's CR0 with "
    "svm_set_cr0, not kvm_set_cr0, so no kvm_mmu_reset_context.",
    "N4 kvm_mmu_sync_roots calls per run: 1 at L1's first kvm_mmu_load "
    "(direct), per VMRUN 1 (N2) plus 1 in the first one's kvm_mmu_load "
    "(N3), per #VMEXIT 1 (N2).  root_mmu's root survives the world "
    "switches (nested_svm_load_cr3 with nested_npt=false -> "
    "kvm_mmu_new_pgd keeps a direct root).",
    "N5 L1's write of an NPT leaf entry goes through L1's TDP mapping of "
    "that table's gfn, write-protected when its shadow page was created "
    "(account_shadowed -> kvm_mmu_slot_gfn_write_protect, which covers "
    "the TDP MMU) or synced (mmu_sync_children -> "
    "kvm_vcpu_write_protect_gfn).  The fault is not emulated (level-1 "
    "gfns are not write-tracked) and reaches make_spte -> "
    "mmu_try_to_unsync_pages (tdp_mmu.c tdp_mmu_map_handle_target_level), "
    "as A4 for shadow paging; writes to an unsync table do not fault.  L1 "
    "writes no other page a shadow page shadows.",
    "N6 L2 (32-bit, paging off) reads one byte at VA(k) for each k in "
    "every VMRUN, then VMMCALL; its code is reached through PD_id's "
    "2 MiB NPT page, shadowed by a direct sp as in A8.  After the first "
    "VMRUN its reads hit present sptes: mmu_sync_children keeps PTE 0's "
    "spte (FNAME(sync_page) leaves an unchanged gpte's spte), so only "
    "the first VMRUN faults.",
    "N7 VM destruction is A12: kvm_mmu_zap_all zaps active_mmu_pages "
    "(only guest_mmu's shadow pages here) newest first; "
    "kvm_mmu_unload at vCPU destruction prepare-zaps the guest_mmu root "
    "once more (no walk).",
]


class NestedRun:
    """kvmwalk --nested on an npt=1 host: the script of SHAPES.md's nested
    section, as KVM sees it."""

    def __init__(self, shape, trace=False, variant="stock"):
        self.setup(shape, kvm_class(variant), trace)
        self.l2 = Vcpu(self.kvm, self.g)       # the guest_mmu side
        # One (event, number, mmu_sync_children calls) per world switch.
        self.switches = []

    def setup(self, shape, kvm_cls, trace):
        """The KVM and the guest memory of both nested modes: the tables
        are SHAPES.md's 4level ones (L2's NPT, or L1's own)."""
        validate(shape)
        self.s = shape
        self.rec = Recorder()
        self.rec.trace = trace
        self.kvm = kvm_cls(self.rec)
        self.g = Guest(kvm_shapes.make_shape("4level", shape.tables, shape.dirs,
                                             shape.rounds, "cr3", False,
                                             shape.exit_unsync))
        # Host pages L1 wrote (its stack, the VMCB): only direct prefetch
        # looks at them, which changes no figure.
        self.g.host_pages |= {STACK_GFN, VMCB_GFN}
        self.kvm.set_memslot_pages(self.g.npages)

    def sync_roots_direct(self):
        """kvm_mmu_sync_roots on root_mmu: counted, returns at once (N1)."""
        self.rec.hits["kvm_mmu_sync_roots"] += 1

    def l1_dirty(self, r):
        """L1 writes PTE 1 of every NPT leaf table (N5)."""
        for k in range(self.s.tables):
            self.kvm.mmu_try_to_unsync_pages(pt_gfn(k))

    def vmrun(self, n):
        rec = self.rec
        before = rec.hits["mmu_sync_children"]
        self.l2.req_mmu_sync = True            # N2
        self.l2.enter_guest()                  # N3
        for k in range(self.s.tables):         # N6
            self.l2.guest_read(self.g.va(k))
        self.l2.access(None)                   # vmmcall
        self.switches.append(("vmrun", n, rec.hits["mmu_sync_children"] - before))
        self.sync_roots_direct()               # #VMEXIT: KVM_REQ_MMU_SYNC
        self.switches.append(("vmexit", n, 0))

    def run(self):
        s = self.s
        self.sync_roots_direct()               # L1's first kvm_mmu_load
        self.vmrun(0)                          # prime
        for r in range(s.rounds):
            self.l1_dirty(r)
            self.vmrun(1 + r)
        if s.exit_unsync:
            self.l1_dirty(s.rounds + 1)
        self.kvm.kvm_mmu_zap_all()             # N7
        self.l2.kvm_mmu_free_roots()
        self.rec.switches = list(self.switches)
        return self.rec


def predict(shape, trace=False, variant="stock"):
    """Run the model; returns the Recorder, with .switches: one
    (event, number, mmu_sync_children calls) per VMRUN and #VMEXIT."""
    return NestedRun(shape, trace=trace, variant=variant).run()


def by_guest_level(rec):
    """The agent's figures split by the guest level a walk's shadow pages
    belong to (role.guest_mode of the root the walk starts from: 0 = the
    VM's own tables, "l1"; 1 = its nested guest's, "l2").  On an npt=1
    host the shadow MMU shadows nothing but L1's NPT, so every figure is
    L2's (N1): {"l1": zero report, "l2": rec.report()}."""
    from shadow import Recorder as _Empty
    return {"l1": _Empty().report(), "l2": rec.report()}


# ----------------------------------------------------------------------
# --nested=shadow on an npt=0 host: L2 runs without NPT, on L1's tables
# ----------------------------------------------------------------------

SHADOW_ASSUMPTIONS = [
    "S1 With npt=0 there is one shadow MMU, root_mmu, for both levels: "
    "kvm_init_mmu computes its role with guest_mode = is_guest_mode "
    "(mmu.c kvm_calc_cpu_role), so L1's and L2's shadow pages of the same "
    "guest tables are different pages (role.word differs), each found "
    "only by its own level (kvm_mmu_find_shadow_page).",
    "S2 Nested VMRUN: nested_svm_load_cr3(L2's CR3, nested_npt=false, "
    "svm/nested.c:499) -> kvm_init_mmu, then kvm_mmu_new_pgd -> "
    "fast_pgd_switch -> cached_root_find_and_keep_current (mmu.c:4402) "
    "rotates L1's root into prev_roots[0] and finds L2's root there from "
    "the second VMRUN on; #VMEXIT (nested_svm_load_cr3 of L1's CR3, "
    ":1047-1065) swaps them back.  Neither root is freed between world "
    "switches (three prev_roots, two roots in use).  The first VMRUN "
    "finds no root for L2: kvm_mmu_reload -> kvm_mmu_load allocates it.",
    "S3 Both world switches request KVM_REQ_MMU_SYNC "
    "(nested_svm_transition_tlb_flush, N2), handled on the root just "
    "switched to: VMRUN syncs L2's tree, #VMEXIT syncs L1's tree, each "
    "iff is_unsync_root.  force_flush_and_sync_on_reuse is off (mmu.c:"
    "4492).  L2's CR0.PG equals L1's, so no KVM_REQ_TLB_FLUSH_GUEST (whose "
    "handler would also sync prev_roots with npt=0).",
    "S4 L1's write of PTE 1 of PT[k] faults on L1's write-protected "
    "mapping and mmu_try_to_unsync_pages unsyncs every valid shadow page "
    "of that gfn: L1's and L2's (mmu.c:2695 for_each_gfn_valid_sp_with_"
    "gptes).  A sync of one level write-protects the gfn, so the next "
    "write faults again and unsyncs the page the other level synced.",
]


class GRole(kvm_shapes.Role):
    """Role with union kvm_mmu_page_role's guest_mode bit."""
    __slots__ = ("guest_mode",)

    def __init__(self, level, direct=False, guest_mode=0):
        super().__init__(level, direct=direct)
        self.guest_mode = guest_mode

    def word(self):
        return super().word() + (self.guest_mode,)


class LevelVcpu(Vcpu):
    """One guest level's view of root_mmu: its own root, its roles."""

    def __init__(self, kvm, guest, guest_mode):
        super().__init__(kvm, guest)
        self.guest_mode = guest_mode

    def role(self, level, direct=False):
        return GRole(level, direct=direct, guest_mode=self.guest_mode)

    def kvm_mmu_sync_roots(self):
        self.kvm.route(self.guest_mode)
        super().kvm_mmu_sync_roots()


def level_kvm(base):
    """base (shadow.Kvm) whose figures go to recs[role.guest_mode] when
    recs is set: every entry point of a count routes by the guest level
    of the shadow page it concerns (a walk: its root's)."""

    class LevelKvm(base):
        recs = None

        def route(self, guest_mode):
            if self.recs is not None:
                self.rec = self.recs[guest_mode]

        def get_shadow_page(self, vcpu, gfn, role, name=None):
            self.route(role.guest_mode)
            return super().get_shadow_page(vcpu, gfn, role, name)

        def kvm_unsync_page(self, sp):
            self.route(sp.role.guest_mode)
            super().kvm_unsync_page(sp)

        def mmu_sync_children(self, vcpu, parent, can_yield):
            self.route(parent.role.guest_mode)
            return super().mmu_sync_children(vcpu, parent, can_yield)

        def _Kvm__kvm_mmu_prepare_zap_page(self, sp, invalid_list):
            self.route(sp.role.guest_mode)
            return super()._Kvm__kvm_mmu_prepare_zap_page(sp, invalid_list)

    return LevelKvm


class ShadowNestedRun(NestedRun):
    """kvmwalk --nested=shadow on an npt=0 host (S1-S4)."""

    def __init__(self, shape, split=False, trace=False):
        self.setup(shape, level_kvm(kvm_class("stock")), trace)
        if split:
            self.kvm.recs = {0: Recorder(), 1: Recorder()}
        self.l1 = LevelVcpu(self.kvm, self.g, 0)
        self.l2 = LevelVcpu(self.kvm, self.g, 1)
        self.switches = []

    def l1_dirty(self, r):
        data = kvm_shapes.DATA_A_GFN if r % 2 == 0 else kvm_shapes.DATA_B_GFN
        for k in range(self.s.tables):
            self.l1.guest_write_table(pt_gfn(k), 1, kvm_shapes.GEntry(data))

    def vmrun(self, n):
        hits = lambda: sum(r.hits["mmu_sync_children"] for r in
                           (self.kvm.recs.values() if self.kvm.recs else [self.rec]))
        before = hits()
        self.l2.req_mmu_sync = True            # S3 (S2: L2's root current)
        self.l2.enter_guest()
        for k in range(self.s.tables):
            self.l2.guest_read(self.g.va(k))
        self.l2.access(None)                   # vmmcall
        self.switches.append(("vmrun", n, hits() - before))
        before = hits()
        self.l1.req_mmu_sync = True            # #VMEXIT: L1's root again
        self.l1.enter_guest()
        self.switches.append(("vmexit", n, hits() - before))

    def run(self):
        s = self.s
        self.l1.enter_guest()                  # first KVM_RUN: L1's root
        for k in range(s.tables):              # L1 primes
            self.l1.guest_read(self.g.va(k))
        self.vmrun(0)
        for r in range(s.rounds):
            self.l1_dirty(r)
            self.vmrun(1 + r)
        if s.exit_unsync:
            self.l1_dirty(s.rounds + 1)
        self.kvm.kvm_mmu_zap_all()
        self.l1.kvm_mmu_free_roots()           # kvm_mmu_unload: both roots
        self.l2.kvm_mmu_free_roots()
        for rec in [self.rec] + list((self.kvm.recs or {}).values()):
            rec.switches = list(self.switches)
        return self.rec


def predict_shadow(shape, split=False, trace=False):
    """--nested=shadow.  split=False: the Recorder of every figure (what
    the kernel's instruments and today's agent see); split=True:
    {"l1": Recorder, "l2": Recorder} by role.guest_mode."""
    run = ShadowNestedRun(shape, split=split, trace=trace)
    rec = run.run()
    if split:
        return {"l1": run.kvm.recs[0], "l2": run.kvm.recs[1]}
    return rec


def main(argv=None):
    """CLI: the agent's figures of one nested shape as JSON, per guest
    level with --split (the agent's guest label, l1 and l2)."""
    import argparse
    import json
    import shlex
    import sys

    import compare_nested
    p = argparse.ArgumentParser(
        description="Predict a kvmwalk --nested shape's figures.",
        epilog="example: nested.py --split -- --nested=shadow --tables 13 --rounds 3")
    p.add_argument("--split", action="store_true",
                   help="one report per guest level (role.guest_mode)")
    p.add_argument("kvmwalk_args", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    args = " ".join(shlex.quote(w) for w in a.kvmwalk_args if w != "--")
    try:
        shape = compare_nested.shape_from_args(args)
        mode = compare_nested.parse_args(shlex.split(args)).nested
    except (ValueError, SystemExit) as e:
        print("nested.py: %s" % (e if isinstance(e, ValueError) else
                                 "bad kvmwalk arguments: %r" % args), file=sys.stderr)
        return 2
    if mode == "shadow":
        out = (predict_shadow(shape, split=True) if a.split
               else {"all": predict_shadow(shape)})
    else:
        rec = predict(shape)
        out = by_guest_level(rec) if a.split else {"all": rec}
    json.dump({k: (v.report() if hasattr(v, "report") else v)
               for k, v in out.items()}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
