"""What every bare-machine test needs to start the agent: its path, a free
port, bpffs, and a one-shot run."""

import fcntl
import os
import socket
import subprocess
import tempfile

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


def require_agent_and_bpffs():
    """For a setUpClass: skip unless the agent is built; mount bpffs if a
    host without systemd lacks it (the agent itself refuses to)."""
    import unittest
    if not os.path.exists(AGENT):
        raise unittest.SkipTest("%s not built (make all)" % AGENT)
    if not bpffs_mounted():
        subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS], check=True)


def log_file():
    """A temporary file for an agent's stderr that the test may read while
    the agent writes: O_APPEND, because the two share one open file and
    its offset, and a test's seek(0) to read would otherwise make the
    agent's next line overwrite the start of the log."""
    f = tempfile.TemporaryFile(mode="w+")
    flags = fcntl.fcntl(f.fileno(), fcntl.F_GETFL)
    fcntl.fcntl(f.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)
    return f
