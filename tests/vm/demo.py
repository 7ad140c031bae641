#!/usr/bin/env python3
"""make demo: boot the lab with the agent and a mix of workloads, print what
it scraped and a short summary, and say whether every figure matches the
model of the walk.  No KVM host needed: KVM runs inside QEMU.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import labagent  # noqa: E402
from promtext import parse_metrics  # noqa: E402

ROW = "%-9s %-42s %5s %5s %8s %6s %6s %7s %7s %5s"


def main():
    print("booting the lab (Debian's stock kernel under QEMU, kvm_amd npt=0)...",
          flush=True)
    rc, log, sec = labagent.run_agent("auto")
    if rc != 0 or "check" not in sec:
        print("lab failed (rc=%d); log: %s" % (rc, labagent.lab.last_log))
        return 1
    print("\n$ kvm-unsync-exporter --check")
    print(sec["check"])
    print(ROW % ("shape", "workload", "syncs", "walks", "restarts", "frames",
                 "leaves", "clr-walk", "clr-par", "model"))
    agree = True
    for name, args in labagent.SHAPES:
        pid = int(sec["shape " + name].split("pid=")[1].split()[0])
        s = parse_metrics(sec["metrics " + name])
        got = labagent.agent_figures(s, pid)
        want = labagent.model(args)
        same = all(got[k] == want[k] for k in got)
        agree &= same
        ctx = ("sync", "zap")
        print(ROW % (name, args,
                     sum(got["sync_calls"].values()),
                     sum(sum(got["walks"][c].values()) for c in ctx),
                     got["restarts"],
                     sum(got["frames"].values()),
                     sum(got["leaves"].values()),
                     sum(got["clears"][c]["walk"] for c in ctx),
                     sum(got["clears"][c]["clear_parents"] for c in ctx),
                     "=" if same else "DIFF"))
    print("\nWhat the last workload's scrape looked like (kvm_unsync_* for its VM):")
    last = labagent.SHAPES[-1][0]
    for line in sec["metrics " + last].splitlines():
        if 'vm="%s"' % last in line or line.startswith("kvm_unsync_probe") \
                or line.startswith("kvm_unsync_kernel_info"):
            print("  " + line)
    print("""
Reading it: 'restarts' are walks that filled the 16-entry page vector and
returned -ENOSPC, so the sync walked again from the top; 'boundary' restarts
once although its 13 leaves all fit (root, PDPT and PD take three entries);
'floodzap' and 'exitzap' walk outside any sync (context="zap").  Every row
marked '=' equals the model of the walk (tests/model/) figure for figure.""")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
