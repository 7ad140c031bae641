"""The tracked tree itself: no merge left half done.

A conflict block committed by mistake reads as two versions of the same
paragraph (or fails to compile only where it hits code); this finds it in
any tracked text file."""

import os
import re
import subprocess
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MARKER = re.compile(rb"^(<{7}|>{7})( |$)", re.M)


class Tree(unittest.TestCase):
    def test_no_conflict_markers(self):
        files = subprocess.run(["git", "-C", REPO, "ls-files", "-z"],
                               capture_output=True, check=True
                               ).stdout.split(b"\0")
        if files == [b""]:
            self.skipTest("not a git checkout")
        found = []
        for name in filter(None, files):
            path = os.path.join(REPO, name.decode())
            if not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            if b"\0" in data:
                continue
            for m in MARKER.finditer(data):
                line = data.count(b"\n", 0, m.start()) + 1
                found.append("%s:%d" % (name.decode(), line))
        self.assertEqual(found, [], "conflict markers committed")


if __name__ == "__main__":
    unittest.main()
