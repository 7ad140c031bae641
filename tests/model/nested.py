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
        validate(shape)
        self.s = shape
        self.rec = Recorder()
        self.rec.trace = trace
        self.kvm = kvm_class(variant)(self.rec)
        base = kvm_shapes.make_shape("4level", shape.tables, shape.dirs,
                                     shape.rounds, "cr3", False,
                                     shape.exit_unsync)
        self.g = Guest(base)
        # Host pages L1 wrote (its stack, the VMCB): only direct prefetch
        # looks at them, which changes no figure.
        self.g.host_pages |= {STACK_GFN, VMCB_GFN}
        self.kvm.set_memslot_pages(self.g.npages)
        self.l2 = Vcpu(self.kvm, self.g)       # the guest_mmu side
        # One (event, number, mmu_sync_children calls) per world switch.
        self.switches = []

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
