"""What every `make bench` script does with its report: write it under
build/bench/ and print it, with where the lab's log is."""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def write(name, lines, log_path):
    """build/bench/NAME from lines (a Markdown report), then print it."""
    out = os.path.join(REPO, "build", "bench", name)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print("\nwritten to %s (lab log: %s)" % (out, log_path))
