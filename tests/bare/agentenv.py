"""What every bare-machine test needs to start the agent: its path, a free
port, bpffs, and a one-shot run."""

import os
import socket
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
AGENT = os.path.join(REPO, "build", "kvm-unsync-exporter")
BPFFS = "/sys/fs/bpf"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bpffs_mounted():
    with open("/proc/mounts") as f:
        return any(line.split()[1] == BPFFS and line.split()[2] == "bpf"
                   for line in f)


def ensure_bpffs():
    """Mount bpffs at BPFFS if it is not there yet.  Which test mounts it
    first must not decide whether another one runs: a class that checked at
    import time skipped on a fresh machine and ran on a used one."""
    if not bpffs_mounted():
        subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS], check=True)


def run(args, timeout=60, **kw):
    """The agent with `args`, to completion: a CompletedProcess."""
    return subprocess.run([AGENT] + args, capture_output=True, text=True,
                          timeout=timeout, **kw)
