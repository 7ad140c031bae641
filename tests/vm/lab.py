#!/usr/bin/env python3
"""The VM lab: boot Debian's stock kernel under QEMU (TCG, emulated AMD SVM)
with a scenario script in the initramfs, and collect its serial log.

From a test (Python 3 stdlib only)::

    import sys; sys.path.insert(0, "tests/vm")
    import lab

    rc, log = lab.run_scenario("tests/vm/scenarios/agent_basic.sh",
                               ["build/kvm-unsync-exporter", "build/vm/kvmwalk"],
                               timeout=120)
    assert rc == 0, log
    out = lab.sections(log)["metrics"]

run_scenario(scenario_path, extra_binaries=(), timeout=DEFAULT_TIMEOUT, *,
             env=None, files=(), load_kvm=True, qemu_args=(), log_path=None,
             echo=False, on_line=None, kernel=None, append="")
             -> (rc, log_text)

    Builds an initramfs (initramfs.sh) holding busybox, the KVM modules,
    the scenario as /scenario and each extra binary as /bin/<basename>
    (with the shared libraries and loader ldd names), boots it, and
    returns:
      rc        the scenario's exit code, read from the end marker /init
                prints; LAB_TIMEOUT (124) if the VM ran past `timeout`
                seconds and was killed; LAB_NO_EXIT (125) if QEMU ended
                without the marker (kernel panic, QEMU error).  In the last
                two cases log_text ends with a "lab: ..." line saying so.
      log_text  the serial console, CR and terminal escapes removed.
    env:       {NAME: value} exported to the scenario.
    files:     [(src, "/dest")] data files copied into the VM.
    load_kvm:  False leaves KVM unloaded; the scenario runs `load-kvm`
               (default kvm-amd npt=0) when it wants.
    qemu_args: appended to the QEMU command line (e.g. a -nic with hostfwd).
    log_path:  where the raw serial log goes (default build/vm/logs/...);
               the path of the last log is in lab.last_log.
    echo:      copy the console to stderr as it arrives.
    on_line:   called with each console line as it arrives (in a thread).
    kernel:    a bzImage with KVM and kvm-amd built in (tests/kernel/
               build.sh) instead of Debian's stock kernel: the initramfs
               then holds no modules, load-kvm only checks for /dev/kvm,
               and the command line gets kvm_amd.npt=0 (BUILTIN_KVM_APPEND)
               for shadow paging.  load_kvm=False cannot unload a built-in
               KVM; it only skips that check.
    append:    extra kernel command line words.

Every log ends with the kernel's own log, between "=== BEGIN dmesg ==="
and "=== END dmesg ===" (printed by /init after the scenario, before the
exit marker): dmesg(log_text) returns it, kernel_splats(log_text) the
lines in it that say WARN, BUG, lockdep or a call trace.

kernel_splats(log_text) -> [line, ...]

    The lines of the dmesg section (or of the whole log if it has none)
    that report a kernel warning, BUG, oops, lockdep or RCU splat, or a
    call trace.  An empty list means a clean kernel log.

sections(log_text) -> {name: text}

    The blocks a scenario prints between "=== BEGIN name ===" and
    "=== END name ===" lines: the lines in between, each ending with "\\n"
    as printed (so a metrics block is valid text exposition format).
    A block whose END never came is left out; a name seen twice raises
    ValueError.

Inside the VM (see initramfs.sh): proc, sysfs, devtmpfs, debugfs, tracefs
and bpffs are mounted, lo is up, /dev/kvm exists (kvm_amd npt=0: shadow
paging), PATH=/bin holds busybox's applets and the extra binaries, and
/lib holds what every scenario may use: the shell helpers of
scenarios/lib.sh as /lib/kue-scenario.sh and the walk-trace analyser
scenarios/walk_trace.awk as /lib/kue-walk-trace.awk.

CLI: lab.py kernel | lab.py run SCENARIO [BINARY...] [options] |
     lab.py sections LOG [NAME] | lab.py splats LOG  (lab.py -h for details)
Environment: KUE_CACHE (kernel and initramfs cache), KUE_BUILD (build
directory, default <repo>/build/vm), KUE_QEMU (QEMU binary),
KUE_KERNEL_PKG (pin a kernel package).
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# What every scenario finds in the VM: the shell helpers it may source, the
# analyser of walk traces.
SCENARIO_FILES = [
    (os.path.join(HERE, "scenarios", "lib.sh"), "/lib/kue-scenario.sh"),
    (os.path.join(HERE, "scenarios", "walk_trace.awk"),
     "/lib/kue-walk-trace.awk"),
]
DEFAULT_TIMEOUT = 180
LAB_TIMEOUT = 124
LAB_NO_EXIT = 125
# Kernel command line for a kernel with KVM built in: shadow paging.
BUILTIN_KVM_APPEND = "kvm_amd.npt=0"

EXIT_RE = re.compile(r"^=== KUE SCENARIO EXIT rc=(\d+)(?: tainted=(\d+))? ===$",
                     re.M)
BEGIN_RE = re.compile(r"^=== BEGIN (.+?) ===$")
END_RE = re.compile(r"^=== END (.+?) ===$")
# CSI sequences and the odd ESC c (reset) SeaBIOS prints on the serial line.
ESCAPES_RE = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_c])")
# Kernel log lines that mean something went wrong in the kernel.  Not the
# bare word "lockdep": a lockdep kernel's boot banner says "RCU lockdep
# checking is enabled" and "MAX_LOCKDEP_..."; its splats say "WARNING:" or
# "BUG:" and "lockdep is turned off" or "turning off the locking
# correctness validator".
SPLAT_RE = re.compile(
    r"WARNING:|BUG:|Oops|Kernel panic|general protection fault|"
    r"Call Trace|possible circular locking|possible recursive locking|"
    r"inconsistent lock state|suspicious RCU usage|DEBUG_LOCKS_WARN_ON|"
    r"lockdep is turned off|turning off the locking correctness validator|"
    r"INFO: task .* blocked|soft lockup|hard LOCKUP")

last_log = None
_kernels = {}


def build_dir():
    return os.environ.get("KUE_BUILD") or os.path.join(REPO, "build", "vm")


def kernel(suite=None):
    """Resolve (and on first use download) a Debian kernel: a dict with
    PKG, RELEASE, VMLINUZ, MODULES, CONFIG, SUITE.  suite: None for the
    host's own (or $KUE_KERNEL_SUITE), else a Debian suite such as trixie
    or sid (kernel.sh -s).  Cached for the process, per suite."""
    if suite not in _kernels:
        cmd = [os.path.join(HERE, "kernel.sh")]
        if suite:
            cmd += ["-s", suite]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                             text=True).stdout
        k = {}
        for line in out.splitlines():
            key, _, value = line.partition("=")
            if key.startswith("KUE_KERNEL_"):
                k[key[len("KUE_KERNEL_"):]] = value
        _kernels[suite] = k
    return _kernels[suite]


def clean(text):
    """Serial output as text: CRs and terminal escapes removed."""
    return ESCAPES_RE.sub("", text.replace("\r", ""))


_stock_kernel = kernel


def build_initramfs(out, scenario_path, extra_binaries=(), *, env=None,
                    files=(), load_kvm=True, builtin_kvm=False, suite=None):
    cmd = [os.path.join(HERE, "initramfs.sh"), "-o", out, "-s", scenario_path]
    cmd += ["-k"] if builtin_kvm else ["-m", _stock_kernel(suite)["MODULES"]]
    if not load_kvm:
        cmd.append("-n")
    for name, value in (env or {}).items():
        cmd += ["-e", "%s=%s" % (name, value)]
    files = SCENARIO_FILES + list(files)
    for src, dest in files:
        cmd += ["-f", "%s:%s" % (src, dest)]
    cmd += list(extra_binaries)
    subprocess.run(cmd, check=True)


def boot(initrd, timeout=DEFAULT_TIMEOUT, *, log_path, qemu_args=(),
         append="", echo=False, on_line=None, kernel=None, suite=None):
    """Boot the stock kernel (that of Debian suite `suite`, or the bzImage
    `kernel`, adding BUILTIN_KVM_APPEND) with `initrd`; returns
    (rc, log_text) as run_scenario does."""
    global last_log
    qemu = os.environ.get("KUE_QEMU", "qemu-system-x86_64")
    if kernel:
        if not os.path.isfile(kernel):
            raise FileNotFoundError("no kernel image %s" % kernel)
        image = kernel
        append = (BUILTIN_KVM_APPEND + " " + append).strip()
    else:
        image = _stock_kernel(suite)["VMLINUZ"]
    cmd = [qemu, "-accel", "tcg", "-cpu", "qemu64,+svm", "-m", "1024",
           "-smp", "1", "-nographic", "-no-reboot",
           "-kernel", image, "-initrd", initrd,
           "-append", ("console=ttyS0 quiet panic=-1 " + append).strip()]
    cmd += list(qemu_args)
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    last_log = log_path
    chunks = []

    def pump(stream, log):
        # Line by line so on_line and echo see whole lines; the log file
        # gets the raw bytes, the caller the cleaned text.
        for raw in iter(stream.readline, b""):
            log.write(raw)
            log.flush()
            line = clean(raw.decode("utf-8", "replace"))
            chunks.append(line)
            if echo:
                sys.stderr.write(line)
            if on_line:
                on_line(line.rstrip("\n"))

    start = time.monotonic()
    with open(log_path, "wb") as log:
        # Own session: a timeout kills QEMU and nothing else.
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                start_new_session=True)
        reader = threading.Thread(target=pump, args=(proc.stdout, log),
                                  daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(10)
        if not reader.is_alive():
            proc.stdout.close()
        elapsed = time.monotonic() - start
        text = "".join(chunks)
        m = None
        for m in EXIT_RE.finditer(text):
            pass
        if timed_out:
            msg = ("lab: TIMEOUT: VM killed after %ds (limit %ds); log %s\n"
                   % (elapsed, timeout, log_path))
            rc = LAB_TIMEOUT
        elif m is None:
            msg = ("lab: VM ended without the scenario exit marker (QEMU "
                   "exit %d, kernel panic?) after %.1fs; log %s\n"
                   % (proc.returncode, elapsed, log_path))
            rc = LAB_NO_EXIT
        else:
            msg = None
            rc = int(m.group(1))
        if msg:
            if text and not text.endswith("\n"):
                text += "\n"
                log.write(b"\n")
            text += msg
            log.write(msg.encode())
            if echo:
                sys.stderr.write(msg)
    return rc, text


def run_scenario(scenario_path, extra_binaries=(), timeout=DEFAULT_TIMEOUT,
                 *, env=None, files=(), load_kvm=True, qemu_args=(),
                 log_path=None, echo=False, on_line=None, kernel=None,
                 append="", suite=None):
    """Build an initramfs around `scenario_path` and boot it; see the
    module docstring.  suite: boot that Debian suite's kernel (kernel()).
    Returns (rc, log_text)."""
    if isinstance(extra_binaries, str):
        extra_binaries = [extra_binaries]
    name = os.path.splitext(os.path.basename(scenario_path))[0]
    if log_path is None:
        log_path = os.path.join(build_dir(), "logs", "%s-%s-%d.log" % (
            name, time.strftime("%Y%m%d-%H%M%S"), os.getpid()))
    os.makedirs(build_dir(), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=build_dir()) as tmp:
        initrd = os.path.join(tmp, "initrd.gz")
        build_initramfs(initrd, scenario_path, extra_binaries, env=env,
                        files=files, load_kvm=load_kvm,
                        builtin_kvm=bool(kernel), suite=suite)
        return boot(initrd, timeout, log_path=log_path, qemu_args=qemu_args,
                    append=append, echo=echo, on_line=on_line, kernel=kernel,
                    suite=suite)


def sections(log_text):
    """{name: text} of the "=== BEGIN name ===" / "=== END name ===" blocks."""
    found = {}
    name, lines = None, []
    for line in log_text.splitlines():
        b = BEGIN_RE.match(line.rstrip())
        if b:
            # A BEGIN inside an open block means the first never ended.
            name, lines = b.group(1), []
            continue
        e = END_RE.match(line.rstrip())
        if e and e.group(1) == name:
            if name in found:
                raise ValueError("section %r appears twice" % name)
            found[name] = "".join(l + "\n" for l in lines)
            name = None
            continue
        if name is not None:
            lines.append(line)
    return found


def dmesg(log_text):
    """The kernel log /init prints after the scenario ("" if missing)."""
    return sections(log_text).get("dmesg", "")


def kernel_splats(log_text):
    """Lines of the kernel log (the dmesg section, or the whole log if the
    VM died before printing it) that report a warning, BUG, oops, lockdep
    or RCU splat, or a call trace."""
    text = dmesg(log_text) or log_text
    return [l for l in text.splitlines() if SPLAT_RE.search(l)]


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Boot the KVM lab VM with a scenario.",
        epilog="example: lab.py run tests/vm/scenarios/selfcheck.sh "
               "build/vm/kvmwalk --timeout 300")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("kernel", help="fetch the kernel, print its paths")
    r = sub.add_parser("run", help="boot a scenario; exit with its code")
    r.add_argument("scenario")
    r.add_argument("binaries", nargs="*")
    r.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT)
    r.add_argument("--log", help="serial log file")
    r.add_argument("--no-kvm", action="store_true",
                   help="do not load KVM at boot")
    r.add_argument("-e", "--env", action="append", default=[],
                   metavar="NAME=VALUE")
    r.add_argument("-f", "--file", action="append", default=[],
                   metavar="SRC:/DEST")
    r.add_argument("--qemu-arg", action="append", default=[])
    r.add_argument("--kernel", metavar="BZIMAGE",
                   help="boot this kernel (KVM built in, tests/kernel/"
                   "build.sh) instead of Debian's stock one")
    r.add_argument("--append", default="",
                   help="extra kernel command line")
    r.add_argument("-q", "--quiet", action="store_true",
                   help="do not echo the console")
    s = sub.add_parser("sections", help="print a log's sections as JSON, "
                       "or one section's text")
    s.add_argument("log")
    s.add_argument("name", nargs="?")
    k = sub.add_parser("splats", help="print the kernel log lines of a "
                       "serial log that report a WARN, BUG, lockdep splat "
                       "or call trace; exit 1 if there are any")
    k.add_argument("log")
    a = ap.parse_args(argv)

    if a.cmd == "kernel":
        for key, value in kernel().items():
            print("KUE_KERNEL_%s=%s" % (key, value))
        return 0
    if a.cmd == "splats":
        with open(a.log, errors="replace") as f:
            found = kernel_splats(clean(f.read()))
        for line in found:
            print(line)
        return 1 if found else 0
    if a.cmd == "sections":
        with open(a.log, errors="replace") as f:
            found = sections(clean(f.read()))
        if a.name is None:
            json.dump(found, sys.stdout, indent=1)
            print()
            return 0
        if a.name not in found:
            print("lab.py: no section %r" % a.name, file=sys.stderr)
            return 1
        sys.stdout.write(found[a.name])
        return 0

    env = {}
    for kv in a.env:
        name, sep, value = kv.partition("=")
        if not sep:
            ap.error("-e wants NAME=VALUE, got %r" % kv)
        env[name] = value
    files = []
    for spec in a.file:
        src, sep, dest = spec.partition(":")
        if not sep or not dest.startswith("/"):
            ap.error("-f wants SRC:/DEST, got %r" % spec)
        files.append((src, dest))
    rc, _ = run_scenario(a.scenario, a.binaries, a.timeout, env=env,
                         files=files, load_kvm=not a.no_kvm,
                         qemu_args=a.qemu_arg, log_path=a.log,
                         echo=not a.quiet, kernel=a.kernel, append=a.append)
    print("lab: scenario exit %d, log %s" % (rc, last_log), file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
