"""The Linux guest of the VM lab: QEMU inside the lab VM as the VMM of a
real Linux guest on the lab's KVM (shadow paging, kvm_amd npt=0).

The guest is Debian 12's own kernel image (the lab's 6.1, tests/vm/
kernel.sh) with a small initramfs: a static busybox and guest/init.sh,
which forks and execs kue.forks=N short processes and powers off.  What
goes into the lab VM for it, and only for the suites that boot it:
qemu-system-x86_64 with the libraries ldd names, the firmware a microvm
machine loads, the guest's kernel and initramfs, guest/lib.sh
(/lib/kue-guest.sh: run_guest, QEMU's command line) and guest/trace.awk
(/lib/kue-guest-trace.awk: the kernel's own figures from a trace).

    binaries, files = labguest.lab_payload(tmpdir)
    lab.run_scenario(scenario, [AGENT, ...] + binaries, files=files + ...)
"""

import glob
import gzip
import lzma
import os
import re
import shutil
import subprocess
import tempfile

import lab

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST = os.path.join(HERE, "guest")
QEMU = os.environ.get("KUE_GUEST_QEMU", "/usr/bin/qemu-system-x86_64")
QEMU_DATA = "/usr/share/qemu"
# What a microvm machine with -kernel loads (bios-microvm.bin is a link to
# qboot.rom: copied under both names, as files)
FIRMWARE = ("qboot.rom", "bios-microvm.bin", "linuxboot_dma.bin",
            "kvmvapic.bin")
# Where KVM decrements sp->unsync_children (clear_unsync_child_bit(),
# inlined): the walk itself, and mmu_pages_clear_parents() wherever the
# build put it (its own function on 6.1, inlined into the sync and zap
# loops on 6.12 and newer).
CLEAR_SITES = (("walk", "__mmu_unsync_walk"),
               ("cp", "mmu_pages_clear_parents"),
               ("cp", "mmu_sync_children"),
               ("cp", "mmu_zap_unsync_children"))
DECREMENT_RE = re.compile(r"^\s*([0-9a-f]+):\s+subl\s+\$0x1,(0x[0-9a-f]+)\(%r\w+\)$")


def newc(entries):
    """A newc cpio archive of (name, mode, data, rdev) entries, owned by
    root: the guest's /dev/console is a device node, which cpio cannot
    archive without making it on disk (root only)."""
    out = bytearray()
    for ino, (name, mode, data, rdev) in enumerate(
            list(entries) + [("TRAILER!!!", 0, b"", (0, 0))], 1):
        nb = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(nb), 0)
        out += b"070701" + b"".join(b"%08X" % f for f in fields) + nb
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def busybox():
    path = os.environ.get("KUE_BUSYBOX") or shutil.which("busybox")
    if not path:
        raise FileNotFoundError("busybox not found (apt-get install "
                                "busybox-static)")
    return path


def build_initramfs(out):
    """The guest's initramfs: busybox, /init, /dev/console."""
    with open(busybox(), "rb") as f:
        bb = f.read()
    with open(os.path.join(GUEST, "init.sh"), "rb") as f:
        init = f.read()
    d, reg, chr_ = 0o40755, 0o100755, 0o20600
    entries = [("bin", d, b"", (0, 0)), ("dev", d, b"", (0, 0)),
               ("proc", d, b"", (0, 0)), ("bin/busybox", reg, bb, (0, 0)),
               ("init", reg, init, (0, 0)),
               ("dev/console", chr_, b"", (5, 1))]
    with gzip.open(out, "wb", compresslevel=6) as f:
        f.write(newc(entries))


def guest_kernel():
    """The guest's vmlinuz: Debian 12's image, whatever the lab runs."""
    return lab.kernel(None)["VMLINUZ"]


def lab_payload(tmpdir):
    """(binaries, files) for lab.run_scenario: QEMU, its firmware, the
    guest's kernel and initramfs (built into tmpdir), the guest helpers."""
    if not os.path.exists(QEMU):
        raise FileNotFoundError("%s not found (apt-get install "
                                "qemu-system-x86)" % QEMU)
    initrd = os.path.join(tmpdir, "guest-initrd.gz")
    build_initramfs(initrd)
    files = [(os.path.join(QEMU_DATA, f), "%s/%s" % (QEMU_DATA, f))
             for f in FIRMWARE]
    files += [(guest_kernel(), "/guest/vmlinuz"),
              (initrd, "/guest/initrd.gz"),
              (os.path.join(GUEST, "lib.sh"), "/lib/kue-guest.sh"),
              (os.path.join(GUEST, "trace.awk"), "/lib/kue-guest-trace.awk")]
    return [QEMU], files


def disassemble(ko, func):
    """objdump's lines for FUNC in the module file KO and the function's
    own address; ([], None) if it is not there (inlined)."""
    r = subprocess.run(["objdump", "-d", "--no-show-raw-insn",
                        "--disassemble=" + func, ko],
                       stdout=subprocess.PIPE, text=True, check=True)
    m = re.search(r"^([0-9a-f]+) <%s>:$" % re.escape(func), r.stdout, re.M)
    if not m:
        return [], None
    return r.stdout.splitlines(), int(m.group(1), 16)


def clear_sites(suite=None):
    """The kprobe places ("walk"|"cp", "FUNC+0xOFF") of every decrement of
    unsync_children in the lab kernel's kvm.ko, found by disassembling it
    here (objdump): the one `subl $0x1,D(%reg)` of __mmu_unsync_walk gives
    the field's displacement D, and every such instruction at D in the
    functions of CLEAR_SITES is a site.  Raises LookupError when the build
    does not look like that (then the clears cannot be counted)."""
    mods = lab.kernel(suite)["MODULES"]
    found = glob.glob(os.path.join(mods, "kernel", "arch", "x86", "kvm",
                                   "kvm.ko*"))
    if not found:
        raise LookupError("no kvm.ko under %s" % mods)
    with tempfile.NamedTemporaryFile(suffix=".ko") as ko:
        if found[0].endswith(".xz"):
            with lzma.open(found[0]) as f:
                ko.write(f.read())
        else:
            with open(found[0], "rb") as f:
                ko.write(f.read())
        ko.flush()
        per_func = {}
        for _, func in CLEAR_SITES:
            lines, start = disassemble(ko.name, func)
            per_func[func] = [(int(m.group(1), 16) - start, m.group(2))
                              for m in map(DECREMENT_RE.match, lines) if m]
    walk = per_func["__mmu_unsync_walk"]
    if len(walk) != 1:
        raise LookupError("__mmu_unsync_walk has %d `subl $0x1,D(%%reg)`, "
                          "not 1" % len(walk))
    disp = walk[0][1]
    sites = [(site, "%s+0x%x" % (func, off)) for site, func in CLEAR_SITES
             for off, d in per_func[func] if d == disp]
    if not any(site == "cp" for site, _ in sites):
        raise LookupError("no decrement at %s in mmu_pages_clear_parents "
                          "or where it is inlined" % disp)
    return sites
