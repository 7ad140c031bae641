#!/usr/bin/env python3
"""Run Python test modules and end with one `N passed, N failed, N skipped`
line, which tests/run.sh adds up.  Skips are listed with their reasons:
a skipped test must say why.

Usage: pyrun.py PATH/test_x.py [PATH/test_y.py ...]
"""

import importlib.util
import os
import sys
import unittest


def load(path):
    name = os.path.splitext(os.path.basename(path))[0]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return unittest.defaultTestLoader.loadTestsFromModule(mod)


def main(paths):
    suite = unittest.TestSuite(load(p) for p in paths)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    # Counted by test, not by subtest: a test whose subtests failed or were
    # skipped is one failed (or skipped) test, so the three add up to the
    # tests run.  A test with any failure is failed; else with any skip,
    # skipped (its reasons are listed below).
    def ids(entries):
        return {getattr(t, "test_case", t).id() for t, _ in entries}
    failed_ids = ids(result.failures) | ids(result.errors) | \
        {t.id() for t in result.unexpectedSuccesses}
    skipped_ids = ids(result.skipped) - failed_ids
    failed, skipped = len(failed_ids), len(skipped_ids)
    passed = result.testsRun - failed - skipped
    for test, why in result.skipped:
        print("skipped: %s: %s" % (test.id(), why))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed or result.testsRun == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
