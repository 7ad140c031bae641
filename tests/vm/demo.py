#!/usr/bin/env python3
"""make demo: boot the lab with the agent and a mix of workloads, print what
it scraped and a short summary, and say whether every figure matches the
model of the walk.  No KVM host needed: KVM runs inside QEMU.

Beside the plain VMs runs one whose guest is itself a hypervisor with a
guest of its own (kvmwalk --nested=shadow): its figures split into
guest="l1" (its own page tables) and guest="l2" (its nested guest's).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import labagent  # noqa: E402
from promtext import parse_metrics  # noqa: E402

ROW = "%-9s %-46s %-5s %5s %5s %8s %6s %6s %7s %7s %5s"
# One VM with a nested guest, on this npt=0 host: KVM shadows both levels.
NESTED = ("nested", "--nested=shadow --tables 13 --rounds 3")
SHAPES = labagent.SHAPES + [NESTED]


def main():
    print("booting the lab (Debian's stock kernel under QEMU, kvm_amd npt=0 "
          "nested=1)...", flush=True)
    rc, log, sec = labagent.run_agent(
        "auto", shapes=SHAPES, env={"KUE_KVM_AMD_PARAMS": "npt=0 nested=1"})
    if rc != 0 or "check" not in sec:
        print("lab failed (rc=%d); log: %s" % (rc, labagent.lab.last_log))
        return 1
    print("\n$ kvm-unsync-exporter --check")
    print(sec["check"])
    print(ROW % ("shape", "workload", "guest", "syncs", "walks", "restarts",
                 "frames", "leaves", "clr-walk", "clr-par", "model"))
    agree = True
    for name, args in SHAPES:
        pid = int(sec["shape " + name].split("pid=")[1].split()[0])
        s = parse_metrics(sec["metrics " + name])
        levels = labagent.model_levels(args)
        agree &= labagent.guests_of(s, pid) == sorted(levels)
        for guest, want in levels.items():
            got = labagent.agent_figures(s, pid, guest)
            same = all(got[k] == want[k] for k in got)
            agree &= same
            row(name, args, guest, got, same)
    print("\nWhat the nested VM's scrape looked like (kvm_unsync_* for its VM):")
    for line in sec["metrics " + NESTED[0]].splitlines():
        if 'vm="%s"' % NESTED[0] in line or line.startswith("kvm_unsync_probe") \
                or line.startswith("kvm_unsync_kernel_info"):
            print("  " + line)
    print("""
Reading it: 'restarts' are walks that filled the 16-entry page vector and
returned -ENOSPC, so the sync walked again from the top; 'boundary' restarts
once although its 13 leaves all fit (root, PDPT and PD take three entries);
'floodzap' and 'exitzap' walk outside any sync (context="zap").  The nested
VM's figures split by guest level: L1's own tables (guest="l1", synced at
each #VMEXIT) and its L2's (guest="l2", synced at each VMRUN); the plain
VMs have no guest="l2" series.  On an npt=1 host only the l2 part
would be there: KVM shadows nothing but a nested guest's tables.  Every row
marked '=' equals the model of the walk (tests/model/) figure for figure.""")
    return 0 if agree else 1


def row(name, args, guest, got, same):
    ctx = ("sync", "zap")
    print(ROW % (name, args, guest,
                 sum(got["sync_calls"].values()),
                 sum(sum(got["walks"][c].values()) for c in ctx),
                 got["restarts"],
                 sum(got["frames"].values()),
                 sum(got["leaves"].values()),
                 sum(got["clears"][c]["walk"] for c in ctx),
                 sum(got["clears"][c]["clear_parents"] for c in ctx),
                 "=" if same else "DIFF"))


if __name__ == "__main__":
    sys.exit(main())
