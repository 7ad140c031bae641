"""A small parser for the Prometheus text format, for the tests.

Only what the agent emits: `name{l="v",...} value` lines and comments.  Kept
strict on purpose: a line it cannot read is an error, not a skipped sample.
"""

import re

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def parse_labels(text):
    labels, pos = [], 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        if not m:
            raise ValueError("bad labels: %r" % text)
        labels.append((m.group(1), unescape(m.group(2))))
        pos = m.end()
    return tuple(labels)


def number(v):
    f = float(v)
    return int(f) if f.is_integer() and "e" not in v and "." not in v else f


def parse_metrics(text):
    """{(name, ((label, value), ...)): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise ValueError("bad sample line: %r" % line)
        key = (m.group(1), parse_labels(m.group(3) or ""))
        if key in out:
            raise ValueError("duplicate sample: %r" % line)
        out[key] = number(m.group(4))
    return out


def select(samples, name, **labels):
    """Values of `name` whose labels include all of `labels`, in text order."""
    return [v for (n, lbl), v in samples.items()
            if n == name and all(dict(lbl).get(k) == val
                                 for k, val in labels.items())]
